# Faster R-CNN R50-FPN 1x with GC (../faster_rcnn_gc_r50_coco.py) starting from the backbone of the
# GC authors' Mask R-CNN R50-FPN with GC r16 in c3-c5 (xvjiarui/GCNet, "Main Results",
# mask_rcnn_r16_gcb_c3-c5_r50_fpn), converted by
#   python tools/model_converters/convert.py gcnet SRC checkpoints/gcnet_r50.pth
# (SRC: the released file; docs/en/user_guides/pretrained.md). GCNet released
# detectors, not ImageNet networks: this backbone was trained on COCO, with GC in it. mmdet's
# ResNet of the base config freezes plugins with their stage; mmattn.AttnResNet does so only with
# freeze_plugins=True, as here (layer1 has no GC: frozen_stages=1 freezes the stem and layer1).
_base_ = '../faster_rcnn_gc_r50_coco.py'

model = dict(
    backbone=dict(
        type='mmattn.AttnResNet',
        frozen_stages=1,
        freeze_plugins=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/gcnet_r50.pth')))
