# Faster R-CNN R50-FPN 1x on COCO with ECA after conv3 of every bottleneck, as in ECA-Net50
# (Wang et al., CVPR 2020; BangguWu/ECANet). The 1-D kernel size follows the paper's adaptive
# rule from each stage's width: 5, 5, 5, 7. (The authors' released ImageNet ECA-Net50 used
# 3, 5, 5, 7 and their Faster R-CNN 5 everywhere: give one plugin entry per stage with
# kernel_size to rebuild either.)
# mmattn.AttnResNet is mmdet's ResNet (same weights and keys) whose frozen_stages=1 freezes
# the stem and layer1's own layers but leaves the attention modules in layer1 training:
# torchvision's weights hold none of theirs. Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(type='mmattn.AttnResNet', plugins=[
        dict(cfg=dict(type='mmattn.ECA'),
             stages=(True, True, True, True),
             position='after_conv3')
    ]))
