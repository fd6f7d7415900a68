# Faster R-CNN R50-FPN 1x on COCO with CBAM (Woo et al., ECCV 2018) after conv3 of every
# bottleneck, where its authors put it in CBAM-ResNet-50 (Jongchan/attention-module). r=16,
# 7x7 spatial gate whose BN keeps the authors' eps 1e-5 / momentum 0.01 and starts with weight 0.
# torchvision's weights cover the ResNet only: CBAM starts from its own init. With mmdet's
# baseline norm_eval=True every BN of the backbone, CBAM's included, keeps its running
# statistics.
# mmattn.AttnResNet is mmdet's ResNet (same weights and keys) whose frozen_stages=1 freezes
# the stem and layer1's own layers but leaves the attention modules in layer1 training:
# torchvision's weights hold none of theirs. Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(type='mmattn.AttnResNet', plugins=[
        dict(cfg=dict(type='mmattn.CBAM', reduction=16, kernel_size=7),
             stages=(True, True, True, True),
             position='after_conv3')
    ]))
