# Faster R-CNN R50-FPN 1x on COCO with SimAM (Yang et al., ICML 2021) in every bottleneck.
# The authors' ResNet (ZjjConan/SimAM, mmdetection/mmdet/models/backbones/resnet_simam.py) puts
# SimAM right after the 3x3 conv, before bn2. mmdet's plugin points come after a conv's norm
# and activation, so 'after_conv2' (after conv2 + bn2 + ReLU, before conv3) is the closest one.
# lambda = 0.1: the value of the authors' COCO config (faster_rcnn_r50simam_fpn.py,
# attention_param=0.1) and of their ImageNet ResNet-50 behind the 39.2 box AP they report; the
# module's default 1e-4 is the paper's general setting. SimAM has no parameters.
# mmattn.AttnResNet is mmdet's ResNet (same weights and keys) whose frozen_stages=1 freezes
# the stem and layer1's own layers but leaves the attention modules in layer1 training:
# torchvision's weights hold none of theirs. Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(type='mmattn.AttnResNet', plugins=[
        dict(cfg=dict(type='mmattn.SimAM', e_lambda=0.1),
             stages=(True, True, True, True),
             position='after_conv2')
    ]))
