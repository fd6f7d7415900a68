# The toy Faster R-CNN (./faster_rcnn_se_r50_toy-coco.py) with a spatial gate and a pixel-to-pixel
# attention in its backbone instead of SE, for tools/visualize_attention.py (its test and the
# pictures of docs/en/user_guides/attention_maps.md): CBAM after conv3 of every bottleneck (as
# ../faster_rcnn_cbam_r50_coco.py) and Non-local blocks on the outputs of blocks 1 and 3 of
# stages 2 and 3 (as ../faster_rcnn_nonlocal_r50_coco.py, without its blocks 5 of stage 3).
# Everything else is the toy config's.
_base_ = './faster_rcnn_se_r50_toy-coco.py'

model = dict(
    backbone=dict(
        type='mmattn.AttnResNet',
        plugins=[
            dict(cfg=dict(type='mmattn.CBAM', reduction=16, kernel_size=7),
                 stages=(True, True, True, True),
                 position='after_conv3'),
            dict(cfg=dict(type='mmattn.NonLocal', reduction=2, mode='embedded_gaussian',
                          use_scale=True, sub_sample=True),
                 stages=(False, True, True, False),
                 blocks=((), (1, 3), (1, 3), ()),
                 position='after_block')
        ]))
