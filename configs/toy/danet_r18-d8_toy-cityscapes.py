# DANet (../danet_r50-d8_cityscapes-512x1024_40k.py: mmseg's DANet with mmattn's AttnDAHead)
# shrunk to train on the toy Cityscapes on a CPU in a few minutes: a quarter-width ResNet-18-D8
# trained from scratch, BN instead of SyncBN, and the toy data, 64x128 crops, schedule and
# runtime that all the toy Cityscapes configs share (./_base_/toy-cityscapes.py).
_base_ = ['mmseg::_base_/models/danet_r50-d8.py', './_base_/toy-cityscapes.py']

norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(size=_base_.crop_size)

# ResNet-18 at a quarter of its width: stages of 16/32/64/128 channels (BasicBlocks do not
# expand). No ImageNet weights exist for it, so it trains from scratch.
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(depth=18, stem_channels=16, base_channels=16, norm_cfg=norm_cfg),
    decode_head=dict(type='mmattn.AttnDAHead', in_channels=128, channels=32, pam_channels=8,
                     norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=64, channels=16, norm_cfg=norm_cfg))
