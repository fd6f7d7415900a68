# ./faster_rcnn_se_r50_toy-coco_ft-se.py with the trained backbone's SE weights left out: the SE
# modules start from their own initialisation, everything else (ResNet weights, heads' init,
# seed, schedule) is the same. What torchvision's weights give an SE-ResNet on real data. The
# checkpoint comes from
#   python tools/model_converters/extract_backbone.py work_dirs/toy_se/epoch_6.pth \
#       checkpoints/toy_se_backbone_no-se.pth --drop-attention SE
_base_ = './faster_rcnn_se_r50_toy-coco_ft-se.py'

model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/toy_se_backbone_no-se.pth')))
