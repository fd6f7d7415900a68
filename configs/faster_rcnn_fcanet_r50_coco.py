# Faster R-CNN R50-FPN 1x on COCO with FcaNet's multi-spectral attention after conv3 of every
# bottleneck, as in the authors' FcaNet-50 detector (Qin et al., ICCV 2021; cfzd/FcaNet,
# mmdetection/mmdet/models/backbones/freqnet.py): 'top16' frequencies, r=16, and a fixed DCT
# basis per stage of 56, 28, 14, 7 (the feature sizes of a 224x224 image); detection feature
# maps of other sizes are average-pooled adaptively to the stage's basis. One plugin entry per
# stage carries its basis size.
# mmattn.AttnResNet is mmdet's ResNet (same weights and keys) whose frozen_stages=1 freezes
# the stem and layer1's own layers but leaves the attention modules in layer1 training:
# torchvision's weights hold none of theirs. Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(type='mmattn.AttnResNet', plugins=[
        dict(cfg=dict(type='mmattn.FcaNet', dct_size=56, freq_sel_method='top16', reduction=16),
             stages=(True, False, False, False),
             position='after_conv3'),
        dict(cfg=dict(type='mmattn.FcaNet', dct_size=28, freq_sel_method='top16', reduction=16),
             stages=(False, True, False, False),
             position='after_conv3'),
        dict(cfg=dict(type='mmattn.FcaNet', dct_size=14, freq_sel_method='top16', reduction=16),
             stages=(False, False, True, False),
             position='after_conv3'),
        dict(cfg=dict(type='mmattn.FcaNet', dct_size=7, freq_sel_method='top16', reduction=16),
             stages=(False, False, False, True),
             position='after_conv3'),
    ]))
