# ResNet-50 without attention, the baseline of the other configs here: mmpretrain's
# resnet50_8xb32_in1k with mmattn.AttnResNet (mmdet's ResNet, the keys and initialisation of
# mmpretrain's) as the backbone. Its classifier checkpoint loads into any configs/ detector or
# segmenter with init_cfg=dict(type='Pretrained', prefix='backbone.', checkpoint=...); one with
# attention modules then says that the checkpoint holds none of their weights.
_base_ = 'mmpretrain::resnet/resnet50_8xb32_in1k.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

# norm_eval=False: the backbone's BN layers train, as mmpretrain's ResNet's do (AttnResNet is
# mmdet's ResNet, whose default norm_eval=True keeps them in eval mode, for fine-tuning)
model = dict(backbone=dict(type='mmattn.AttnResNet', norm_eval=False))
