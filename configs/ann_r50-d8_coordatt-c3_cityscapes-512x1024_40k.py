# ANN R50-D8 on Cityscapes (./ann_r50-d8_cityscapes-512x1024_40k.py) with coordinate attention
# (Hou et al., CVPR 2021) after conv3 of every bottleneck. Its BN is SyncBN, as in the rest of
# mmseg's network.
_base_ = './ann_r50-d8_cityscapes-512x1024_40k.py'

model = dict(
    backbone=dict(plugins=[
        dict(cfg=dict(type='mmattn.CoordAttention', reduction=32,
                      norm_cfg=dict(type='SyncBN', requires_grad=True)),
             stages=(True, True, True, True),
             position='after_conv3')
    ]))
