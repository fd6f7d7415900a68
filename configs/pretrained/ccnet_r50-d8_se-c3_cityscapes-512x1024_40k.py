# CCNet R50-D8 with SE (../ccnet_r50-d8_se-c3_cityscapes-512x1024_40k.py) starting from timm's
# ImageNet SE-ResNet-50 (seresnet50.ra2_in1k, SE weights included), converted by
#   python tools/model_converters/convert.py timm-se SRC checkpoints/timm-se_r50.pth
# (SRC: the released file; docs/en/user_guides/pretrained.md). That network has
# the 7x7 stem: mmattn.AttnResNetV1b (mmseg's plain ResNet), not the ResNetV1c of mmseg's
# open-mmlab://resnet50_v1c baseline, so model.pretrained is dropped. The checkpoint holds the SE
# weights: frozen_stages=1 freezes the stem and layer1 whole, SE included (freeze_plugins=True).
_base_ = '../ccnet_r50-d8_se-c3_cityscapes-512x1024_40k.py'

model = dict(
    pretrained=None,
    backbone=dict(
        type='mmattn.AttnResNetV1b',
        frozen_stages=1,
        freeze_plugins=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/timm-se_r50.pth')))
