# The toy SE detector (./faster_rcnn_se_r50_toy-coco.py) fine-tuned from the toy SE classifier
# (./resnet50_se_toy-imagenet.py): ImageNet pretraining and COCO fine-tuning, in miniature. The
# classifier's checkpoint is an mmpretrain ImageClassifier's (backbone., neck., head. keys); its
# backbone is this detector's, SE included, and loads the OpenMMLab way, with
# prefix='backbone.'. Train the classifier first:
#   python tools/train.py configs/toy/resnet50_se_toy-imagenet.py
# which writes the checkpoint below (tools/train.py's default work directory). As in mmdet's
# fine-tuning from ImageNet, the stem and layer1 stay frozen, SE included: the checkpoint holds
# their weights (freeze_plugins=True).
_base_ = './faster_rcnn_se_r50_toy-coco.py'

model = dict(
    backbone=dict(
        frozen_stages=1,
        freeze_plugins=True,
        init_cfg=dict(_delete_=True, type='Pretrained', prefix='backbone.',
                      checkpoint='work_dirs/resnet50_se_toy-imagenet/epoch_30.pth')))
