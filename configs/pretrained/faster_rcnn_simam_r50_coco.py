# Faster R-CNN R50-FPN 1x with SimAM (../faster_rcnn_simam_r50_coco.py: SimAM after every 3x3
# conv, before bn2, lambda 0.1) starting from the authors' ImageNet SimAM-ResNet-50
# (ZjjConan/SimAM, SimAM-R50, the start of their 39.2 box AP detector), converted by
#   python tools/model_converters/convert.py simam SRC checkpoints/simam_r50.pth
# (SRC: the released file; docs/en/user_guides/pretrained.md). SimAM has no weights; the
# checkpoint's convs were trained with it, so frozen_stages=1 (mmdet's baseline) freezes the stem
# and layer1 whole (freeze_plugins=True), as the authors' detector did.
_base_ = '../faster_rcnn_simam_r50_coco.py'

model = dict(
    backbone=dict(
        frozen_stages=1,
        freeze_plugins=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/simam_r50.pth')))
