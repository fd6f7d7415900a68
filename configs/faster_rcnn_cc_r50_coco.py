# Faster R-CNN R50-FPN 1x on COCO with criss-cross attention (Huang et al., ICCV 2019;
# speedinghzl/CCNet) as a backbone plugin: query/key width C/8, R = 2 passes with shared
# weights (the authors' reported runs use --recurrence 2), gamma starting at 0.
#
# Placement: once, on the output of the last stage (c5), i.e. after the residual sum and ReLU
# of its LAST bottleneck (`position='after_block'`). The authors apply the module once, to a 3x3-conv
# projection of the last stage's output, in their segmentation head (mmseg's version:
# ./ccnet_r50-d8_cityscapes-512x1024_40k.py); in a backbone, the same point is c5's output,
# which the FPN then reads. With 1333x800 images c5 is about 42x25
# pixels, so one module adds little memory.
# mmdet's ResNet puts a plugin in every block of a stage, so this config depends on
# mmattn.AttnResNet (mmdet's ResNet, same weights and keys, whose plugins take `blocks`).
# Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='mmattn.AttnResNet',
        plugins=[
            dict(cfg=dict(type='mmattn.CrissCross', reduction=8, recurrence=2),
                 stages=(False, False, False, True),
                 blocks='last',
                 position='after_block')
        ]))
