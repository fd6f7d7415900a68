# Faster R-CNN R50-FPN 1x on COCO with SimAM (Yang et al., ICML 2021) where its authors put it:
# right after each bottleneck's 3x3 conv, before bn2 (ZjjConan/SimAM resnet_simam.py:
# conv2 = Sequential(conv2, simam)), through the conv slot: conv2 is mmattn.AttnConv2d, the 3x3
# conv followed by SimAM. The plugin form stays available (after conv2 + bn2 + ReLU):
#   plugins=[dict(cfg=dict(type='mmattn.SimAM', e_lambda=0.1), position='after_conv2')]
# lambda = 0.1: the value of the authors' COCO config (faster_rcnn_r50simam_fpn.py,
# attention_param=0.1) and of their ImageNet ResNet-50 behind the 39.2 box AP they report; the
# module's default 1e-4 is the paper's general setting. SimAM has no parameters, and
# AttnConv2d is a Conv2d: torchvision's ResNet-50 fills every weight (conv2.weight included).
# Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='mmattn.AttnResNet',
        conv2_cfg=dict(type='mmattn.AttnConv2d',
                       attention=dict(type='mmattn.SimAM', e_lambda=0.1)),
        stage_with_conv2_cfg=(True, True, True, True)))
