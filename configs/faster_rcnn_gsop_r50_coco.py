# Faster R-CNN R50-FPN 1x on COCO with GSoP channel attention (Gao et al., CVPR 2019;
# ZilinGao/Global-Second-order-Pooling-Convolutional-Networks) after conv3 of the LAST block of
# each stage only, as in the authors' GSoP-Net1 ResNet-50. mmdet's ResNet puts a plugin in
# every block, so this config depends on mmattn.AttnResNet (mmdet's ResNet, same weights and
# keys, whose plugins take blocks='last'). att_dim=128; the authors' 1x1 reducing conv has
# stride 2 in the first stage (64 planes) and 1 after, hence two entries. AttnResNet's
# frozen_stages=1 (mmdet's baseline) freezes the stem and layer1's own layers and leaves the
# GSoP module in layer1 training. Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='mmattn.AttnResNet',
        plugins=[
            dict(cfg=dict(type='mmattn.GSoP', att_dim=128, dr_stride=2),
                 stages=(True, False, False, False),
                 position='after_conv3',
                 blocks='last'),
            dict(cfg=dict(type='mmattn.GSoP', att_dim=128, dr_stride=1),
                 stages=(False, True, True, True),
                 position='after_conv3',
                 blocks='last'),
        ]))
