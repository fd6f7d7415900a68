# Faster R-CNN R50-FPN 1x on COCO with triplet attention (Misra et al., WACV 2021) after conv3
# of every bottleneck, as in the authors' ResNet-50 (landskape-ai/triplet-attention,
# MODELS/resnet.py). 7x7 gates, BN eps 1e-5 / momentum 0.01, the hw branch's BN weight 0 at
# the start. The authors report 39.2 box AP from their ImageNet-trained network; here
# torchvision's weights cover the ResNet only; with mmdet's baseline norm_eval=True every BN
# keeps its running statistics.
# mmattn.AttnResNet is mmdet's ResNet (same weights and keys) whose frozen_stages=1 freezes
# the stem and layer1's own layers but leaves the attention modules in layer1 training:
# torchvision's weights hold none of theirs. Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(type='mmattn.AttnResNet', plugins=[
        dict(cfg=dict(type='mmattn.TripletAttention', kernel_size=7),
             stages=(True, True, True, True),
             position='after_conv3')
    ]))
