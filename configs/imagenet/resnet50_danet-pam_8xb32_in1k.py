# ResNet-50 with Dual Attention Network for Scene Segmentation (Fu et al., CVPR 2019) where
# mmattn.DANetPAM.placement puts it: on the block's output, last block of layer4. Trained and
# tested as mmpretrain trains its ResNet-50 (resnet50_8xb32_in1k: SGD, lr 0.1 for batch 256, 100
# epochs, top-1 and top-5); only the backbone differs. mmattn.AttnResNet is mmdet's ResNet,
# whose keys are mmpretrain's, so the backbone of the trained classifier loads into a detection
# or segmentation config with init_cfg=dict(type='Pretrained', prefix='backbone.',
# checkpoint=...).
_base_ = 'mmpretrain::resnet/resnet50_8xb32_in1k.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

# norm_eval=False: the backbone's BN layers train, as mmpretrain's ResNet's do (AttnResNet is
# mmdet's ResNet, whose default norm_eval=True keeps them in eval mode, for fine-tuning)
model = dict(backbone=dict(
    type='mmattn.AttnResNet',
    norm_eval=False,
    plugins=[
        dict(
            cfg=dict(type='mmattn.DANetPAM', reduction=8),
            stages=(False, False, False, True),
            blocks='last',
            position='after_block')
    ]))
