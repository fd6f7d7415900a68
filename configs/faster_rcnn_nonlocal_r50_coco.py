# Faster R-CNN R50-FPN 1x on COCO with Non-local blocks (Wang et al., CVPR 2018) where the
# authors' code puts them (facebookresearch/video-nonlocal-net: NONLOCAL.LAYER_MOD = 2 with
# CONV3_NONLOCAL and CONV4_NONLOCAL; lib/models/resnet_helper.py::res_stage_nonlocal adds one
# after block idx when idx % 2 == 1): in every other block of res3 and res4, i.e. blocks 1, 3
# of stage 2 and 1, 3, 5 of stage 3 (5 blocks), each on the block's output, after the residual
# sum and its ReLU (position 'after_block'). Embedded Gaussian with the (C/2)^-0.5 scale, inner
# width C/2, keys and values max-pooled 2x2 (their USE_MAXPOOL), a BN after the output conv
# starting at 0 so each Non-local block starts as the identity.
#
# mmdet's ResNet puts a plugin in every block of a stage and only inside the residual branch,
# so this config depends on mmattn.AttnResNet (mmdet's ResNet, same weights and keys, whose
# plugins take `blocks` and the 'after_block' position).
# For COCO the paper itself reports Mask R-CNN with a single block in res4 ("+1 NL", right
# before res4's last block, i.e. after block 4); for that setting use
# blocks=((), (), (4, ), ()). With mmdet's baseline norm_eval=True the blocks' BNs also run on
# their running statistics (an affine map starting at 0).
# Everything else is mmdet's baseline config.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='mmattn.AttnResNet',
        plugins=[
            dict(cfg=dict(type='mmattn.NonLocal', reduction=2, mode='embedded_gaussian',
                          use_scale=True, sub_sample=True),
                 stages=(False, True, True, False),
                 blocks=((), (1, 3), (1, 3, 5), ()),
                 position='after_block')
        ]))
