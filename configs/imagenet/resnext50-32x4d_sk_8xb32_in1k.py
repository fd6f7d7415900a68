# SKNet-50, Selective Kernel Networks (Li et al., CVPR 2019) where mmattn.SKConv.placement puts
# it, the authors' network: a ResNeXt-50 32x4d whose grouped 3x3 conv in every bottleneck of
# layer1-4 is an SK unit (implus/SKNet models/sknet50.prototxt; timm's skresnext50_32x4d), through
# AttnResNeXt's conv2 slot: mmattn.SKConv with M=2 branches of dilation 1 and 2, the block's 32
# groups and stride, d = max(C // 16, 32); the unit ends with its own BNs and ReLUs, so the block
# has no bn2. Trained and tested as mmpretrain trains its ResNeXt-50 32x4d
# (resnext50-32x4d_8xb32_in1k: SGD, lr 0.1 for batch 256, 100 epochs, top-1 and top-5, its
# PIL-resize pipeline); only the backbone differs. mmattn.AttnResNeXt is mmdet's ResNeXt, whose
# keys are mmpretrain's, so the backbone of the trained classifier loads into a detection or
# segmentation config with init_cfg=dict(type='Pretrained', prefix='backbone.', checkpoint=...).
_base_ = 'mmpretrain::resnext/resnext50-32x4d_8xb32_in1k.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

# _delete_: mmdet's ResNeXt names mmpretrain's width_per_group base_width. norm_eval=False: the
# backbone's BN layers train, as mmpretrain's ResNeXt's do (AttnResNeXt is mmdet's ResNeXt,
# whose default norm_eval=True keeps them in eval mode, for fine-tuning)
model = dict(backbone=dict(
    _delete_=True,
    type='mmattn.AttnResNeXt',
    depth=50,
    num_stages=4,
    out_indices=(3, ),
    groups=32,
    base_width=4,
    style='pytorch',
    norm_eval=False,
    conv2_cfg=dict(type='mmattn.SKConv')))
