# Faster R-CNN R50-FPN 1x on COCO with SE (Hu et al., CVPR 2018) on the four backbone outputs
# C2-C5 before the FPN, each level with its own SE; mmattn.AttnNeck runs it. The backbone is
# mmdet's plain ResNet-50 (compare ./faster_rcnn_se_r50_coco.py, SE inside every bottleneck).
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(neck=[
    dict(type='mmattn.AttnNeck',
         in_channels=[256, 512, 1024, 2048],
         attention=dict(type='mmattn.SE', reduction=16)),
    dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5),
])
