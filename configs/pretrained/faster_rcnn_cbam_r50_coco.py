# Faster R-CNN R50-FPN 1x with CBAM (../faster_rcnn_cbam_r50_coco.py) starting from the authors'
# ImageNet CBAM-ResNet-50 (Jongchan/attention-module, ResNet50+CBAM, CBAM weights included),
# converted by
#   python tools/model_converters/convert.py cbam SRC checkpoints/cbam_r50.pth
# (SRC: the released file; docs/en/user_guides/pretrained.md). The checkpoint
# holds the CBAM weights, so frozen_stages=1 (mmdet's baseline) freezes the stem and layer1 whole,
# CBAM included (freeze_plugins=True), as the papers' detection runs did from their ImageNet
# weights.
_base_ = '../faster_rcnn_cbam_r50_coco.py'

model = dict(
    backbone=dict(
        frozen_stages=1,
        freeze_plugins=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/cbam_r50.pth')))
