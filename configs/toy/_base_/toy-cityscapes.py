# What the toy Cityscapes configs (../{danet,ccnet,ann,ocrnet}_r18-d8_toy-cityscapes.py) share:
# the toy data (tools/dataset_converters/make_toy_cityscapes.py: 128x256 street scenes in the
# Cityscapes layout), its pipelines and loaders, a short schedule and the runtime. mmseg's
# Cityscapes dataset, runtime and 40k-schedule bases are the ones mmseg's Cityscapes configs
# (and so ../../*_cityscapes-512x1024_40k.py) use; only what the toy runs need differs.
# Evaluation is mmseg's IoUMetric (mIoU over the classes present), inherited.
#
# No model here: mmengine refuses a key that two bases of one `_base_` list both set, so each
# toy config lists its head's mmseg model base (which sets `norm_cfg`, `data_preprocessor` and
# `model`) next to this file and shrinks that model itself.
_base_ = [
    'mmseg::_base_/datasets/cityscapes.py', 'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py'
]

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

data_root = 'data/toy_cityscapes/'
frame = (256, 128)          # (w, h) of the toy frames, as (2048, 1024) is of Cityscapes'
crop_size = (64, 128)       # (h, w): half the frame's side, as 512x1024 is for Cityscapes
max_iters = 600

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

# the toy models train from scratch: a higher rate than the 0.01 of the ImageNet-initialised
# Cityscapes runs
optim_wrapper = dict(optimizer=dict(lr=0.05, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
randomness = dict(seed=0)
