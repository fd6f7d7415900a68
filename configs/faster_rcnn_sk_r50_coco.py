# Faster R-CNN R50-FPN 1x on COCO with selective kernel units (Li et al., CVPR 2019). In the
# authors' SKNet-50 (implus/SKNet, models/sknet50.prototxt, a ResNeXt-50 32x4d) the SK unit
# *replaces* the grouped 3x3 conv of every bottleneck. A plugin cannot replace a conv, so here
# the SK unit follows it: position 'after_conv2' (after conv2 + bn2 + ReLU, at stride 1, on the
# bottleneck width), keeping torchvision's ResNet-50 weights usable. M=2 branches (dilation 1
# and 2), 32 groups, d = max(C // 16, 32). With mmdet's baseline norm_eval=True every BN
# keeps its running statistics.
# mmattn.AttnResNet is mmdet's ResNet (same weights and keys) whose frozen_stages=1 freezes
# the stem and layer1's own layers but leaves the attention modules in layer1 training:
# torchvision's weights hold none of theirs. Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(type='mmattn.AttnResNet', plugins=[
        dict(cfg=dict(type='mmattn.SelectiveKernel', num_branches=2, groups=32, reduction=16,
                      min_channels=32),
             stages=(True, True, True, True),
             position='after_conv2')
    ]))
