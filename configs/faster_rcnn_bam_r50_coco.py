# Faster R-CNN R50-FPN 1x on COCO with BAM (Park et al., BMVC 2018) between the stages, where
# its authors put it (Jongchan/attention-module, MODELS/model_resnet.py): on the outputs of
# layer1, layer2 and layer3 (256, 512 and 1024 channels), before the next stage and the FPN
# see them. mmattn.AttnResNet is mmdet's ResNet (same weights and keys) with stage_plugins.
# r=16, dilation 4, the authors' product of the channel and spatial branches.
# torchvision's weights cover the ResNet only, so the BAMs start from their own init;
# AttnResNet's frozen_stages=1 (mmdet's baseline) freezes the stem and layer1's own layers and
# leaves the BAM after layer1 training. Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='mmattn.AttnResNet',
        stage_plugins=[
            dict(cfg=dict(type='mmattn.BAM', reduction=16, dilation=4),
                 stages=(True, True, True, False))
        ]))
