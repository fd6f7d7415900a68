# ResNet-50 with Relation-Aware Global Attention for Person Re-identification (Zhang et al.,
# CVPR 2020) where mmattn.RGA.placement puts it: between stages: on the output of layer1-4.
# Trained and tested as mmpretrain trains its ResNet-50 (resnet50_8xb32_in1k: SGD, lr 0.1 for
# batch 256, 100 epochs, top-1 and top-5); only the backbone differs. mmattn.AttnResNet is
# mmdet's ResNet, whose keys are mmpretrain's, so the backbone of the trained classifier loads
# into a detection or segmentation config with init_cfg=dict(type='Pretrained',
# prefix='backbone.', checkpoint=...).
_base_ = 'mmpretrain::resnet/resnet50_8xb32_in1k.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

# norm_eval=False: the backbone's BN layers train, as mmpretrain's ResNet's do (AttnResNet is
# mmdet's ResNet, whose default norm_eval=True keeps them in eval mode, for fine-tuning)
model = dict(backbone=dict(
    type='mmattn.AttnResNet',
    norm_eval=False,
    stage_plugins=[
        dict(
            cfg=dict(
                type='mmattn.RGA',
                use_spatial=True,
                use_channel=True,
                cha_ratio=8,
                spa_ratio=8,
                down_ratio=8,
                spatial_size=(32, 64)),
            stages=(True, False, False, False)),
        dict(
            cfg=dict(
                type='mmattn.RGA',
                use_spatial=True,
                use_channel=True,
                cha_ratio=8,
                spa_ratio=8,
                down_ratio=8,
                spatial_size=(16, 32)),
            stages=(False, True, False, False)),
        dict(
            cfg=dict(
                type='mmattn.RGA',
                use_spatial=True,
                use_channel=True,
                cha_ratio=8,
                spa_ratio=8,
                down_ratio=8,
                spatial_size=(8, 16)),
            stages=(False, False, True, True))
    ]))
