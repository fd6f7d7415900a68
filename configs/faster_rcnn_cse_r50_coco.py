# Faster R-CNN R50-FPN 1x on COCO with channel squeeze & excitation (cSE; Roy et al., MICCAI
# 2018; ai-med/squeeze_and_excitation) after conv3 of every bottleneck. The authors use it in
# the decoder blocks of a segmentation U-Net; as a ResNet plugin it sits where SE does. r=2 as
# in their code.
# mmattn.AttnResNet is mmdet's ResNet (same weights and keys) whose frozen_stages=1 freezes
# the stem and layer1's own layers but leaves the attention modules in layer1 training:
# torchvision's weights hold none of theirs. Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(type='mmattn.AttnResNet', plugins=[
        dict(cfg=dict(type='mmattn.CSE', reduction=2),
             stages=(True, True, True, True),
             position='after_conv3')
    ]))
