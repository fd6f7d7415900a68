# DANet R50-D8 with CBAM (../danet_r50-d8_cbam-c3_cityscapes-512x1024_40k.py) starting from the
# authors' ImageNet CBAM-ResNet-50 (Jongchan/attention-module, ResNet50+CBAM, CBAM weights
# included), converted by
#   python tools/model_converters/convert.py cbam SRC checkpoints/cbam_r50.pth
# (SRC: the released file; docs/en/user_guides/pretrained.md). That network has
# the 7x7 stem: mmattn.AttnResNetV1b (mmseg's plain ResNet), not the ResNetV1c of mmseg's
# open-mmlab://resnet50_v1c baseline, so model.pretrained is dropped. The checkpoint holds the
# CBAM weights: frozen_stages=1 freezes the stem and layer1 whole, CBAM included
# (freeze_plugins=True).
_base_ = '../danet_r50-d8_cbam-c3_cityscapes-512x1024_40k.py'

model = dict(
    pretrained=None,
    backbone=dict(
        type='mmattn.AttnResNetV1b',
        frozen_stages=1,
        freeze_plugins=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/cbam_r50.pth')))
