# Faster R-CNN R50-FPN 1x on COCO with coordinate attention (Hou et al., CVPR 2021) after conv3
# of every bottleneck. The authors' network is a MobileNetV2 (the module follows the depthwise
# conv of each inverted residual, Andrew-Qibin/CoordAttention); in a ResNet bottleneck the
# matching point is after conv3, before the residual addition, as for SE. Reduction 32,
# mip = max(8, C // 32), h_swish. torchvision's weights cover the ResNet only; with mmdet's
# baseline norm_eval=True every BN keeps its running statistics.
# mmattn.AttnResNet is mmdet's ResNet (same weights and keys) whose frozen_stages=1 freezes
# the stem and layer1's own layers but leaves the attention modules in layer1 training:
# torchvision's weights hold none of theirs. Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(type='mmattn.AttnResNet', plugins=[
        dict(cfg=dict(type='mmattn.CoordAttention', reduction=32),
             stages=(True, True, True, True),
             position='after_conv3')
    ]))
