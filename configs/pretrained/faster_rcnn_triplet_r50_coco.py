# Faster R-CNN R50-FPN 1x with triplet attention (../faster_rcnn_triplet_r50_coco.py) starting from
# the authors' ImageNet ResNet-50 + triplet attention (landskape-ai/triplet-attention, k=7,
# attention weights included), converted by
#   python tools/model_converters/convert.py triplet SRC checkpoints/triplet_r50.pth
# (SRC: the released file; docs/en/user_guides/pretrained.md). The checkpoint
# holds the triplet attention weights, so frozen_stages=1 (mmdet's baseline) freezes the stem and
# layer1 whole, triplet attention included (freeze_plugins=True), as the papers' detection runs did
# from their ImageNet weights.
_base_ = '../faster_rcnn_triplet_r50_coco.py'

model = dict(
    backbone=dict(
        frozen_stages=1,
        freeze_plugins=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/triplet_r50.pth')))
