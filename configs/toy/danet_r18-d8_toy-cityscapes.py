# DANet (../danet_r50-d8_cityscapes-512x1024_40k.py) shrunk to train on the toy Cityscapes
# (tools/dataset_converters/make_toy_cityscapes.py: 128x256 street scenes) on a CPU in a few
# minutes: a quarter-width ResNet-18-D8 trained from scratch, BN instead of SyncBN, 64x128 crops
# (half the frame's side, as 512x1024 is for Cityscapes) and a short schedule. Evaluation is
# mmseg's IoUMetric (mIoU over the classes present), inherited.
_base_ = '../danet_r50-d8_cityscapes-512x1024_40k.py'

data_root = 'data/toy_cityscapes/'
frame = (256, 128)          # (w, h) of the toy frames, as (2048, 1024) is of Cityscapes'
crop_size = (64, 128)       # (h, w)
norm_cfg = dict(type='BN', requires_grad=True)
max_iters = 600

# ResNet-18 at a quarter of its width: stages of 16/32/64/128 channels (BasicBlocks do not
# expand). No ImageNet weights exist for it, so it trains from scratch.
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(depth=18, stem_channels=16, base_channels=16, norm_cfg=norm_cfg),
    decode_head=dict(in_channels=128, channels=32, pam_channels=8, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=64, channels=16, norm_cfg=norm_cfg))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=frame, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=frame, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

# from scratch: a higher rate than the 0.01 of the ImageNet-initialised Cityscapes runs
optim_wrapper = dict(optimizer=dict(lr=0.05, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
randomness = dict(seed=0)
