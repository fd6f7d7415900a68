# Faster R-CNN R50-FPN 1x with SE (../faster_rcnn_se_r50_coco.py) starting from timm's ImageNet SE-
# ResNet-50 (seresnet50.ra2_in1k, SE weights included), converted by
#   python tools/model_converters/convert.py timm-se SRC checkpoints/timm-se_r50.pth
# (SRC: the released file; docs/en/user_guides/pretrained.md). The checkpoint
# holds the SE weights, so frozen_stages=1 (mmdet's baseline) freezes layer1 whole, SE included, as
# the SE-ResNet detection runs did from their ImageNet weights.
_base_ = '../faster_rcnn_se_r50_coco.py'

model = dict(
    backbone=dict(
        frozen_stages=1,
        freeze_plugins=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/timm-se_r50.pth')))
