# Faster R-CNN R50-FPN 1x on COCO with the attention modules of the Residual Attention Network
# (Wang et al., CVPR 2017) between the stages: on the outputs of layer1, layer2 and layer3, as
# the authors' Attention-56 (fwang91/residual-attention-network) has one attention module per
# stage at strides 4, 8 and 16. p=1, t=2, r=1; the soft mask goes down 3, 2 and 1 times there
# (AttentionA / B / C of the prototxt). mmattn.AttnResNet is mmdet's ResNet (same weights and
# keys) with stage_plugins. torchvision's weights cover the ResNet only, so the modules start
# from their own init; AttnResNet's frozen_stages=1 (mmdet's baseline) freezes the stem and
# layer1's own layers and leaves the module after layer1 (a dozen pre-activation residual
# units) training. Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='mmattn.AttnResNet',
        stage_plugins=[
            dict(cfg=dict(type='mmattn.ResidualAttention', num_downsamples=3, p=1, t=2, r=1),
                 stages=(True, False, False, False)),
            dict(cfg=dict(type='mmattn.ResidualAttention', num_downsamples=2, p=1, t=2, r=1),
                 stages=(False, True, False, False)),
            dict(cfg=dict(type='mmattn.ResidualAttention', num_downsamples=1, p=1, t=2, r=1),
                 stages=(False, False, True, False)),
        ]))
