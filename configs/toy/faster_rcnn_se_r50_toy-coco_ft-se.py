# Fine-tuning the toy SE detector (./faster_rcnn_se_r50_toy-coco.py) from the backbone of a
# trained one, SE weights included: what a converted ImageNet checkpoint (configs/pretrained/)
# gives on real data, in miniature. The checkpoint comes from
#   python tools/train.py configs/toy/faster_rcnn_se_r50_toy-coco.py --work-dir work_dirs/toy_se
#   python tools/model_converters/extract_backbone.py work_dirs/toy_se/epoch_6.pth \
#       checkpoints/toy_se_backbone.pth
# Its twin ./faster_rcnn_se_r50_toy-coco_ft-se-reinit.py differs in the checkpoint only.
# As in mmdet's fine-tuning from ImageNet, the stem and layer1's own layers stay frozen; the SE
# modules of layer1 train (freeze_plugins=False), so that the twin's random SE can learn.
_base_ = './faster_rcnn_se_r50_toy-coco.py'

model = dict(
    backbone=dict(
        frozen_stages=1,
        init_cfg=dict(_delete_=True, type='Pretrained',
                      checkpoint='checkpoints/toy_se_backbone.pth')))
