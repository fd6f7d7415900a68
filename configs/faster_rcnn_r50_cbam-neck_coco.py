# Faster R-CNN R50-FPN 1x on COCO with CBAM (Woo et al., ECCV 2018) after the FPN, on each of
# its five outputs P2-P6 with its own weights (mmattn.AttnNeck), so the RPN and the RoI head see
# gated features. CBAM's spatial gate BN keeps the authors' eps 1e-5 / momentum 0.01.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(neck=[
    dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5),
    dict(type='mmattn.AttnNeck',
         in_channels=[256] * 5,
         attention=dict(type='mmattn.CBAM', reduction=16)),
])
