# Faster R-CNN R50-FPN 1x on COCO with relation-aware global attention (RGA-SC; Zhang et al.,
# CVPR 2020) between the stages, where its authors put it: their re-ID ResNet-50
# (microsoft/Relation-Aware-Global-Attention-Networks, reid/models/models_utils/rga_branches.py)
# applies one RGA_Module to the output of each of layer1..layer4, before the next stage sees it.
# mmattn.AttnResNet is mmdet's ResNet (same weights and keys) with stage_plugins, which build
# each module with in_channels = the stage's width (256, 512, 1024, 2048).
#
# The authors fix each module's number of positions for a 256x128 person crop: 64x32, 32x16,
# 16x8 and 16x8 (last stride 1). mmattn.RGA relates every pixel to the cells of a fixed grid
# instead (exactly the authors' formula when the map has the grid's size; see its docstring),
# so detection's variable image sizes work. The grids below keep the authors' cell counts
# (2048, 512, 128, 128: the same parameters as their RGA-ResNet-50), laid out landscape like
# COCO's resized images (1333x800: maps of about 200x334, 100x167, 50x84, 25x42).
# cha_ratio = spa_ratio = down_ratio = 8, both branches (the authors' defaults).
#
# torchvision's weights cover the ResNet only, so the RGA modules start from their own init;
# AttnResNet's frozen_stages=1 (mmdet's baseline) freezes the stem and layer1's own layers and
# leaves the module after layer1 training. With the baseline's norm_eval=True every BN of the
# backbone, RGA's included, keeps its running statistics. Everything else is mmdet's baseline
# config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

rga = dict(type='mmattn.RGA', use_spatial=True, use_channel=True, cha_ratio=8, spa_ratio=8,
           down_ratio=8)

model = dict(
    backbone=dict(
        type='mmattn.AttnResNet',
        stage_plugins=[
            dict(cfg=dict(rga, spatial_size=(32, 64)), stages=(True, False, False, False)),
            dict(cfg=dict(rga, spatial_size=(16, 32)), stages=(False, True, False, False)),
            dict(cfg=dict(rga, spatial_size=(8, 16)), stages=(False, False, True, True)),
        ]))
