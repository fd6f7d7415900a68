# Faster R-CNN R50-FPN 1x with FcaNet (../faster_rcnn_fcanet_r50_coco.py) starting from the
# authors' ImageNet FcaNet-50 (cfzd/FcaNet, attention weights included), converted by
#   python tools/model_converters/convert.py fcanet SRC checkpoints/fcanet_r50.pth
# (SRC: the released file; docs/en/user_guides/pretrained.md). The checkpoint
# holds the FcaNet weights, so frozen_stages=1 (mmdet's baseline) freezes the stem and layer1
# whole, FcaNet included (freeze_plugins=True), as the papers' detection runs did from their
# ImageNet weights.
_base_ = '../faster_rcnn_fcanet_r50_coco.py'

model = dict(
    backbone=dict(
        frozen_stages=1,
        freeze_plugins=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/fcanet_r50.pth')))
