# Faster R-CNN R50-FPN 1x on COCO with SRM after conv3 of every bottleneck, as in SRM-ResNet-50
# (Lee et al., ICCV 2019; hyunjaelee410/style-based-recalibration-module). As the authors do,
# SRM's channel-wise FC (cfc, initialised to 0) and its BN train without weight decay: the
# plugin is named 'srm' inside each block, so its parameters are '...layerX.Y.srm.*'.
# mmattn.AttnResNet is mmdet's ResNet (same weights and keys) whose frozen_stages=1 freezes
# the stem and layer1's own layers but leaves the attention modules in layer1 training:
# torchvision's weights hold none of theirs. Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(type='mmattn.AttnResNet', plugins=[
        dict(cfg=dict(type='mmattn.SRM'),
             stages=(True, True, True, True),
             position='after_conv3')
    ]))

optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'.srm.': dict(decay_mult=0.)}))
