# Faster R-CNN R50-FPN 1x on COCO with coordinate attention (Hou et al., CVPR 2021) after conv3
# of every bottleneck. The authors' network is a MobileNetV2 (the module follows the depthwise
# conv of each inverted residual, Andrew-Qibin/CoordAttention); in a ResNet bottleneck the
# matching point is after conv3, before the residual addition, as for SE. Reduction 32,
# mip = max(8, C // 32), h_swish. torchvision's weights cover the ResNet only. With mmdet's
# baseline frozen_stages=1 and norm_eval=True, layer1's modules keep their init and every BN its
# running statistics. Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(plugins=[
        dict(cfg=dict(type='mmattn.CoordAttention', reduction=32),
             stages=(True, True, True, True),
             position='after_conv3')
    ]))
