# Faster R-CNN R50-FPN 1x with SE (../faster_rcnn_se_r50_coco.py) starting from mmpretrain's
# ImageNet SE-ResNet-50 (seresnet50_8xb32_in1k, top-1 77.74; SE weights included), converted by
#   python tools/model_converters/convert.py mmpretrain-se SRC checkpoints/mmpretrain-se_r50.pth
# (SRC: the released se-resnet50_batch256_imagenet_20200804-ae206104.pth;
# docs/en/user_guides/pretrained.md). The checkpoint holds the SE weights, so frozen_stages=1
# (mmdet's baseline) freezes layer1 whole, SE included.
_base_ = '../faster_rcnn_se_r50_coco.py'

model = dict(
    backbone=dict(
        frozen_stages=1,
        freeze_plugins=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/mmpretrain-se_r50.pth')))
