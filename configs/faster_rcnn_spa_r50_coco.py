# Faster R-CNN R50-FPN 1x on COCO with spatial pyramid attention (SPANet's SPP-SE layer,
# Guo et al., ICME 2020; 13952522076/SPANet) after conv3 of every bottleneck: average pools at
# 1, 2 and 4, bias-free MLP with r=16.
# mmattn.AttnResNet is mmdet's ResNet (same weights and keys) whose frozen_stages=1 freezes
# the stem and layer1's own layers but leaves the attention modules in layer1 training:
# torchvision's weights hold none of theirs. Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(type='mmattn.AttnResNet', plugins=[
        dict(cfg=dict(type='mmattn.SPA', reduction=16, pool_sizes=(1, 2, 4)),
             stages=(True, True, True, True),
             position='after_conv3')
    ]))
