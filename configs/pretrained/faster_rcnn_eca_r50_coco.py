# Faster R-CNN R50-FPN 1x with ECA (../faster_rcnn_eca_r50_coco.py) starting from the authors'
# ImageNet ECA-ResNet-50 (BangguWu/ECANet, eca_resnet50_k3557, ECA weights included), converted by
#   python tools/model_converters/convert.py eca SRC checkpoints/eca_r50.pth
# (SRC: the released file; docs/en/user_guides/pretrained.md). The released
# network's kernel sizes are 3, 5, 5, 7 per stage (the base config's adaptive rule gives 5, 5, 5,
# 7). The checkpoint holds the ECA weights, so frozen_stages=1 (mmdet's baseline) freezes the stem
# and layer1 whole, ECA included (freeze_plugins=True), as the papers' detection runs did from
# their ImageNet weights.
_base_ = '../faster_rcnn_eca_r50_coco.py'

model = dict(
    backbone=dict(
        plugins=[
            dict(cfg=dict(type='mmattn.ECA', kernel_size=3), position='after_conv3',
                 stages=(True, False, False, False)),
            dict(cfg=dict(type='mmattn.ECA', kernel_size=5), position='after_conv3',
                 stages=(False, True, False, False)),
            dict(cfg=dict(type='mmattn.ECA', kernel_size=5), position='after_conv3',
                 stages=(False, False, True, False)),
            dict(cfg=dict(type='mmattn.ECA', kernel_size=7), position='after_conv3',
                 stages=(False, False, False, True)),
        ],
        frozen_stages=1,
        freeze_plugins=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/eca_r50.pth')))
