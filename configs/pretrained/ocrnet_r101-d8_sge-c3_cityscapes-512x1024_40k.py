# OCRNet R101-D8 with SGE (../ocrnet_r101-d8_sge-c3_cityscapes-512x1024_40k.py) starting from the
# authors' ImageNet SGE-ResNet-101 (implus/PytorchInsight, SGE weights included), converted by
#   python tools/model_converters/convert.py sge SRC checkpoints/sge_r101.pth
# (SRC: the released file; docs/en/user_guides/pretrained.md). That network has
# the 7x7 stem: mmattn.AttnResNetV1b (mmseg's plain ResNet), not the ResNetV1c of mmseg's
# open-mmlab://resnet101_v1c baseline, so model.pretrained is dropped. The checkpoint holds the
# SGE weights: frozen_stages=1 freezes the stem and layer1 whole, SGE included
# (freeze_plugins=True).
_base_ = '../ocrnet_r101-d8_sge-c3_cityscapes-512x1024_40k.py'

model = dict(
    pretrained=None,
    backbone=dict(
        type='mmattn.AttnResNetV1b',
        frozen_stages=1,
        freeze_plugins=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/sge_r101.pth')))
