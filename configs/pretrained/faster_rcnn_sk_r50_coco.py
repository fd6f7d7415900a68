# Faster R-CNN R50-FPN 1x with SKNet-50 (../faster_rcnn_sk_r50_coco.py: a ResNeXt-50 32x4d whose
# 3x3 convs are SK units) starting from timm's ImageNet SKNet-50 (skresnext50_32x4d.ra_in1k, SK
# units included), converted by
#   python tools/model_converters/convert.py timm-sk-x32x4d SRC checkpoints/timm-sk-x32x4d_r50.pth
# (SRC: the released file; docs/en/user_guides/pretrained.md). The checkpoint holds the SK units,
# so frozen_stages=1 (mmdet's baseline) freezes the stem and layer1 whole, SK units included
# (freeze_plugins=True), as the papers' detection runs did from their ImageNet weights.
_base_ = '../faster_rcnn_sk_r50_coco.py'

model = dict(
    backbone=dict(
        frozen_stages=1,
        freeze_plugins=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/timm-sk-x32x4d_r50.pth')))
