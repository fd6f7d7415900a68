# The SE-ResNet-50 ImageNet classifier (../imagenet/resnet50_se_8xb32_in1k.py) shrunk to train
# on the toy ImageNet (handwritten digits, tools/dataset_converters/make_toy_imagenet.py) on a
# CPU in a few minutes: 32 px pictures and a ResNet-50 at a quarter of its width, the backbone
# of the toy SE detector (faster_rcnn_se_r50_toy-coco.py), so that this classifier's checkpoint
# initialises it (faster_rcnn_se_r50_toy-coco_ft-cls.py). Only what the toy data needs differs
# from the ImageNet config; the SE plugins are the inherited ones.
_base_ = '../imagenet/resnet50_se_8xb32_in1k.py'

data_root = 'data/toy_imagenet'
metainfo = dict(classes=('0', '1', '2', '3', '4', '5', '6', '7', '8', '9'))

# base_channels=16: stage widths 64/128/256/512 instead of 256/512/1024/2048
model = dict(
    backbone=dict(base_channels=16),
    head=dict(num_classes=10, in_channels=512))
data_preprocessor = dict(num_classes=10)

# the pictures are 32x32: crops of most of the picture (a digit fills half of it or more), no
# flips (mirrored digits are other shapes)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.6, 1.0)),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=50,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader

# 30 epochs of 25 iterations (800 training pictures, batch 32). ImageNet's SGD schedule starts
# slowly from the zero-initialised residual branches and the head's small weights, over
# thousands of iterations an epoch; in a few hundred AdamW gets going.
max_epochs = 30
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=2e-3, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=25),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min=1e-5)
]
# the schedule above is for batch 32
auto_scale_lr = dict(base_batch_size=32)

default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
randomness = dict(seed=0)
