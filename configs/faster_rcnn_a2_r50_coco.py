# Faster R-CNN R50-FPN 1x on COCO with a double attention (A^2) block (Chen et al., NeurIPS
# 2018) as a backbone plugin: c_m = c_n = 512 (C/4 of the 2048-wide stage; the paper fixes no
# ratio for every block, and no authors' code was released).
#
# Placement (this library's choice): once, after conv3 of the LAST bottleneck of the last
# stage (c5), before the shortcut is added: inside the residual branch, as the paper inserts
# its blocks into ResNet's residual units. With 1333x800 images c5 is about 42x25 pixels.
# mmdet's ResNet puts a plugin in every block of a stage, so this config depends on
# mmattn.AttnResNet (mmdet's ResNet, same weights and keys, whose plugins take `blocks`).
# Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='mmattn.AttnResNet',
        plugins=[
            dict(cfg=dict(type='mmattn.DoubleAttention', c_m=512, c_n=512),
                 stages=(False, False, False, True),
                 blocks='last',
                 position='after_conv3')
        ]))
