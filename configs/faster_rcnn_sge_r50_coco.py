# Faster R-CNN R50-FPN 1x on COCO with spatial group-wise enhance (SGE, Li et al., 2019) after
# conv3 of every bottleneck, as in the authors' SGE-ResNet-50 (implus/PytorchInsight), 64
# groups, weight 0 / bias 1 at the start. The authors report 38.7 box AP for their Faster R-CNN
# R50 (baseline 37.5), from an ImageNet-trained SGE-ResNet-50; here torchvision's weights cover
# the ResNet only. SGE has no norm layer.
# mmattn.AttnResNet is mmdet's ResNet (same weights and keys) whose frozen_stages=1 freezes
# the stem and layer1's own layers but leaves the attention modules in layer1 training:
# torchvision's weights hold none of theirs. Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(type='mmattn.AttnResNet', plugins=[
        dict(cfg=dict(type='mmattn.SGE', groups=64),
             stages=(True, True, True, True),
             position='after_conv3')
    ]))
