# Faster R-CNN R50-FPN 1x on COCO with Gather-Excite after conv3 of every bottleneck, as in the
# authors' GE-ResNet-50 (Hu et al., NeurIPS 2018; hujie-frank/GENet). This is GE-theta-minus,
# the parameter-free form (RN50-GEPF.prototxt): global average pooling -> sigmoid -> x * g.
# For GE-theta / theta-plus, whose global depthwise conv has a fixed kernel, give one plugin
# entry per stage with that stage's feat_size (the authors' 56, 28, 14, 7; other input sizes
# are average-pooled to it), e.g.
#   dict(cfg=dict(type='mmattn.GatherExcite', variant='theta', feat_size=56),
#        stages=(True, False, False, False), position='after_conv3'), ...
# mmattn.AttnResNet is mmdet's ResNet (same weights and keys) whose frozen_stages=1 freezes
# the stem and layer1's own layers but leaves the attention modules in layer1 training:
# torchvision's weights hold none of theirs. Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(type='mmattn.AttnResNet', plugins=[
        dict(cfg=dict(type='mmattn.GatherExcite', variant='theta-minus'),
             stages=(True, True, True, True),
             position='after_conv3')
    ]))
