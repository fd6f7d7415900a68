# Faster R-CNN R50-FPN 1x with BAM (../faster_rcnn_bam_r50_coco.py) starting from the authors'
# ImageNet BAM-ResNet-50 (Jongchan/attention-module, ResNet50+BAM, BAM weights included), converted
# by
#   python tools/model_converters/convert.py bam SRC checkpoints/bam_r50.pth
# (SRC: the released file; docs/en/user_guides/pretrained.md). The released BAM
# fuses its gates by product, as here. The checkpoint holds the BAM weights, so frozen_stages=1
# (mmdet's baseline) freezes the stem and layer1 whole, BAM included (freeze_plugins=True), as the
# papers' detection runs did from their ImageNet weights.
_base_ = '../faster_rcnn_bam_r50_coco.py'

model = dict(
    backbone=dict(
        stage_plugins=[
            dict(cfg=dict(type='mmattn.BAM', reduction=16, dilation=4, fusion='product'),
                 stages=(True, True, True, False))
        ],
        frozen_stages=1,
        freeze_plugins=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/bam_r50.pth')))
