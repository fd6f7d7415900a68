# ResNet-34 with SimAM: A Simple, Parameter-Free Attention Module for Convolutional Neural
# Networks (Yang et al., ICML 2021) where mmattn.SimAM.placement puts it, the authors' SimAM-R34:
# right after the second 3x3 conv of every basic block of layer1-4, before bn2 (ZjjConan/SimAM
# networks/imagenet/resnet.py: BasicBlock's conv2 = Sequential(conv2, simam)), through
# AttnResNet's conv2 slot (a BasicBlock's second conv): conv2 is mmattn.AttnConv2d, the 3x3 conv
# followed by SimAM. lambda = 0.1, the value the authors train their ImageNet ResNets with
# (README: main_imagenet.py -a resnet18 --attention_type simam --attention_param 0.1); the
# module's default 1e-4 is the paper's general setting. Trained and tested as mmpretrain trains
# its ResNet-34 (resnet34_8xb32_in1k: SGD, lr 0.1 for batch 256, 100 epochs, top-1 and top-5);
# only the backbone differs. SimAM has no parameters and AttnConv2d is a Conv2d (conv2.weight),
# so the backbone of the trained classifier loads into a detection or segmentation config with
# init_cfg=dict(type='Pretrained', prefix='backbone.', checkpoint=...).
_base_ = 'mmpretrain::resnet/resnet34_8xb32_in1k.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

# norm_eval=False: the backbone's BN layers train, as mmpretrain's ResNet's do (AttnResNet is
# mmdet's ResNet, whose default norm_eval=True keeps them in eval mode, for fine-tuning)
model = dict(backbone=dict(
    type='mmattn.AttnResNet',
    norm_eval=False,
    conv2_cfg=dict(
        type='mmattn.AttnConv2d', attention=dict(type='mmattn.SimAM', e_lambda=0.1))))
