# DANet R50-D8 on Cityscapes (./danet_r50-d8_cityscapes-512x1024_40k.py) with CBAM (Woo et al.,
# ECCV 2018) after conv3 of every bottleneck, where its authors put it in their ResNet-50. CBAM's
# spatial gate has a BN: SyncBN like the rest of mmseg's network, with the momentum of the
# authors' BN (0.01). The ImageNet weights cover the ResNet; CBAM starts from its own init.
_base_ = './danet_r50-d8_cityscapes-512x1024_40k.py'

model = dict(
    backbone=dict(plugins=[
        dict(cfg=dict(type='mmattn.CBAM', reduction=16,
                      norm_cfg=dict(type='SyncBN', requires_grad=True, momentum=0.01)),
             stages=(True, True, True, True),
             position='after_conv3')
    ]))
