# Faster R-CNN R50-FPN 1x on COCO with global context blocks (Cao et al., ICCVW 2019) where the
# authors put them (xvjiarui/GCNet, configs/gcnet): after conv3 of every bottleneck of stages
# c3-c5, bottleneck ratio 1/16, attention pooling, channel-add fusion, the last conv starting
# at 0 (the block starts as the identity). mmdet's own ResNet takes this placement as it is.
# Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(plugins=[
        dict(cfg=dict(type='mmattn.GlobalContext', ratio=1. / 16, pooling_type='att',
                      fusion_types=('channel_add', )),
             stages=(False, True, True, True),
             position='after_conv3')
    ]))
