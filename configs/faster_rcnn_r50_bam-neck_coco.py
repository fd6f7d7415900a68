# Faster R-CNN R50-FPN 1x on COCO with BAM (Park et al., BMVC 2018) where its authors put it,
# at the ends of layer1, layer2 and layer3 (C2-C4; not C5), applied to the features the FPN
# reads (mmattn.AttnNeck with levels=(0, 1, 2)). Unlike the authors' network, the next stage
# still sees the ungated features: for BAM inside the backbone use mmattn.AttnResNet's
# stage_plugins.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(neck=[
    dict(type='mmattn.AttnNeck',
         in_channels=[256, 512, 1024, 2048],
         attention=dict(type='mmattn.BAM', reduction=16, dilation=4),
         levels=(0, 1, 2)),
    dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5),
])
