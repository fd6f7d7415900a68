# Faster R-CNN R50-FPN 1x on COCO with interaction-aggregation units (Hou et al., CVPR 2019 /
# TNNLS 2020) between the stages, where their authors put them: IAUnet
# (blue-blue272/ImgReID-IAnet, models/IAUnet.py) applies one IAU to the outputs of layer2 and
# layer3 (512 and 1024 channels), before the next stage sees them. The authors' IAU is the
# channel unit followed by the spatial (part) unit; mmattn has them as two modules, stacked here
# in that order (stage plugins of one stage run in list order). mmattn.AttnResNet is mmdet's
# ResNet (same weights and keys) with stage_plugins.
#
# Both units start as the identity (their last BN's weight and bias are 0), so the pretrained
# ResNet's features are unchanged at the start. 4 parts, part features C/2 (the authors').
# The authors also supervise the part maps with human-parsing labels; COCO has none, so the
# units learn from the detection loss only. mmdet's baseline frozen_stages=1 freezes layer1,
# which has no unit. With the baseline's norm_eval=True every BN of the backbone, the units'
# included, keeps its running statistics. Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='mmattn.AttnResNet',
        stage_plugins=[
            dict(cfg=dict(type='mmattn.ChannelIAU'), stages=(False, True, True, False)),
            dict(cfg=dict(type='mmattn.SpatialIAU', num_parts=4, reduction=2),
                 stages=(False, True, True, False)),
        ]))
