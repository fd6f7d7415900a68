# Faster R-CNN R50-FPN 1x on COCO with SKNet-50 (Li et al., CVPR 2019), the authors' layout: a
# ResNeXt-50 32x4d whose grouped 3x3 conv in every bottleneck is an SK unit (implus/SKNet
# models/sknet50.prototxt, timm's skresnext50_32x4d): mmattn.SKConv in AttnResNeXt's conv2 slot
# (M=2 branches of dilation 1 and 2 with the block's 32 groups, d = max(C // 16, 32); the unit
# ends with its own BNs and ReLUs, so the block has no bn2). The plugin form stays available,
# after conv2 + bn2 + ReLU of mmdet's ResNet-50 (backbone=dict(type='mmattn.AttnResNet', ...)):
#   plugins=[dict(cfg=dict(type='mmattn.SelectiveKernel'), position='after_conv2')]
# It starts from mmdet's ImageNet ResNeXt-50 32x4d weights, which hold no SK unit (they stay at
# their initialisation and train, frozen_stages=1 leaving them out);
# configs/pretrained/faster_rcnn_sk_r50_coco.py starts from timm's SKNet-50 (convert.py timm-sk).
# Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='mmattn.AttnResNeXt',
        groups=32,
        base_width=4,
        conv2_cfg=dict(type='mmattn.SKConv'),
        stage_with_conv2_cfg=(True, True, True, True),
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnext50_32x4d')))
