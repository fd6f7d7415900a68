# Faster R-CNN X101-32x4d-FPN 1x with SE (../faster_rcnn_se_x101-32x4d_coco.py) starting from an
# SE-ResNeXt-101 (32x4d) trained with mmpretrain's seresnext101-32x4d_8xb32_in1k config
# (mmpretrain releases no weights for it), converted by
#   python tools/model_converters/convert.py mmpretrain-se-x32x4d SRC \
#       checkpoints/mmpretrain-se-x32x4d_r101.pth
# mmpretrain's stem max-pool is PyTorch's (padding 1), not the Caffe pool of the base config's
# Cadene weights: maxpool_cfg=None. The checkpoint holds the SE weights (freeze_plugins=True).
_base_ = '../faster_rcnn_se_x101-32x4d_coco.py'

model = dict(
    backbone=dict(
        maxpool_cfg=None,
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/mmpretrain-se-x32x4d_r101.pth')))
