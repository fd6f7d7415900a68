# CCNet R50-D8 on Cityscapes (./ccnet_r50-d8_cityscapes-512x1024_40k.py) with SE (Hu et al.,
# CVPR 2018) after conv3 of every bottleneck, as in SE-ResNet-50. SE has no norm layer.
_base_ = './ccnet_r50-d8_cityscapes-512x1024_40k.py'

model = dict(
    backbone=dict(plugins=[
        dict(cfg=dict(type='mmattn.SE', reduction=16),
             stages=(True, True, True, True),
             position='after_conv3')
    ]))
