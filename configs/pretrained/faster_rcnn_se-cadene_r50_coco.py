# Faster R-CNN R50-FPN 1x with SE (../faster_rcnn_se_r50_coco.py) starting from the SE authors'
# Caffe SE-ResNet-50 (hujie-frank/SENet), as Cadene's pretrainedmodels ships it
# (se_resnet50-ce0d4300.pth, SE weights included), converted by
#   python tools/model_converters/convert.py cadene-se SRC checkpoints/cadene-se_r50.pth
# (SRC: the released file; docs/en/user_guides/pretrained.md). Caffe's layout:
# the stride in the 1x1 conv (style='caffe') and a ceil-mode max-pool without padding. The
# checkpoint holds the SE weights, so frozen_stages=1 (mmdet's baseline) freezes the stem and
# layer1 whole, SE included (freeze_plugins=True), as the papers' detection runs did from their
# ImageNet weights.
_base_ = '../faster_rcnn_se_r50_coco.py'

model = dict(
    backbone=dict(
        style='caffe',
        maxpool_cfg=dict(padding=0, ceil_mode=True),
        frozen_stages=1,
        freeze_plugins=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/cadene-se_r50.pth')))
