# CCNet (../ccnet_r50-d8_cityscapes-512x1024_40k.py: mmseg's CCNet with mmattn's AttnCCHead)
# shrunk like ./danet_r18-d8_toy-cityscapes.py: a quarter-width ResNet-18-D8 from scratch, BN
# instead of SyncBN, and the shared toy data, schedule and runtime (./_base_/toy-cityscapes.py).
_base_ = ['mmseg::_base_/models/ccnet_r50-d8.py', './_base_/toy-cityscapes.py']

norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(size=_base_.crop_size)

# ResNet-18 at a quarter of its width (16/32/64/128 channels), from scratch
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(depth=18, stem_channels=16, base_channels=16, norm_cfg=norm_cfg),
    decode_head=dict(type='mmattn.AttnCCHead', in_channels=128, channels=32,
                     norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=64, channels=16, norm_cfg=norm_cfg))
