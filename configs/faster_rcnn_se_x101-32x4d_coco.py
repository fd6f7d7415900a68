# Faster R-CNN SE-ResNeXt-101 (32x4d)-FPN 1x on COCO, beside mmdet's X101-32x4d baseline
# (faster-rcnn_x101-32x4d_fpn_1x_coco.py, 41.2 box AP in mmdet's model zoo): the same config
# with SE after conv3 of every bottleneck (Hu et al., CVPR 2018), started from the authors'
# ImageNet SE-ResNeXt-101 (their Caffe weights as converted by Cadene's pretrainedmodels,
# se_resnext101_32x4d-3b2fe3d8.pth from http://data.lip6.fr/cadene/pretrainedmodels/), made
# into this backbone's checkpoint by:
#   python tools/model_converters/convert.py cadene-se-x32x4d \
#       se_resnext101_32x4d-3b2fe3d8.pth checkpoints/se_resnext101_32x4d_cadene.pth
# The checkpoint holds the SE weights too, so frozen_stages=1 freezes layer1's SE modules with
# the rest of the stage (freeze_plugins=True), as mmdet freezes the baseline's whole stage.
# Those weights were trained with Caffe's stem max-pool (no padding, ceil mode): maxpool_cfg.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_x101-32x4d_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='mmattn.AttnResNeXt',
        maxpool_cfg=dict(padding=0, ceil_mode=True),
        plugins=[dict(cfg=dict(type='mmattn.SE', reduction=16), position='after_conv3')],
        freeze_plugins=True,
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/se_resnext101_32x4d_cadene.pth')))
