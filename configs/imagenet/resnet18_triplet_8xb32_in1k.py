# ResNet-18 with Rotate to Attend: Convolutional Triplet Attention Module (Misra et al., WACV
# 2021) where mmattn.TripletAttention.placement puts it: after conv3, every block of layer1-4.
# ResNet-18 has basic blocks: a plugin after_conv3 runs after their second conv and norm, before
# the residual addition, where it runs in a bottleneck. Trained and tested as mmpretrain trains
# its ResNet-18 (resnet18_8xb32_in1k: SGD, lr 0.1 for batch 256, 100 epochs, top-1 and top-5);
# only the backbone differs. mmattn.AttnResNet is mmdet's ResNet, whose keys are mmpretrain's,
# so the backbone of the trained classifier loads into a detection or segmentation config with
# init_cfg=dict(type='Pretrained', prefix='backbone.', checkpoint=...).
_base_ = 'mmpretrain::resnet/resnet18_8xb32_in1k.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

# norm_eval=False: the backbone's BN layers train, as mmpretrain's ResNet's do (AttnResNet is
# mmdet's ResNet, whose default norm_eval=True keeps them in eval mode, for fine-tuning)
model = dict(backbone=dict(
    type='mmattn.AttnResNet',
    norm_eval=False,
    plugins=[dict(cfg=dict(type='mmattn.TripletAttention'), position='after_conv3')]))
