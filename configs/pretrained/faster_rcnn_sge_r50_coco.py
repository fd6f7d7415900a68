# Faster R-CNN R50-FPN 1x with SGE (../faster_rcnn_sge_r50_coco.py) starting from the authors'
# ImageNet SGE-ResNet-50 (implus/PytorchInsight, SGE weights included), converted by
#   python tools/model_converters/convert.py sge SRC checkpoints/sge_r50.pth
# (SRC: the released file; docs/en/user_guides/pretrained.md). The checkpoint
# holds the SGE weights, so frozen_stages=1 (mmdet's baseline) freezes the stem and layer1 whole,
# SGE included (freeze_plugins=True), as the papers' detection runs did from their ImageNet
# weights.
_base_ = '../faster_rcnn_sge_r50_coco.py'

model = dict(
    backbone=dict(
        frozen_stages=1,
        freeze_plugins=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/sge_r50.pth')))
