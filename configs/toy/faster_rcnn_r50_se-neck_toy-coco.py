# The toy Faster R-CNN (./faster_rcnn_r50_toy-coco.py: a quarter-width ResNet-50 from scratch
# on the toy COCO digits) with SE on the backbone outputs before the FPN, as in
# ../faster_rcnn_r50_se-neck_coco.py. The neck list replaces the toy config's FPN, so the FPN
# is written out again with the toy widths.
_base_ = './faster_rcnn_r50_toy-coco.py'

model = dict(neck=[
    dict(type='mmattn.AttnNeck',
         in_channels=[64, 128, 256, 512],
         attention=dict(type='mmattn.SE', reduction=16)),
    dict(type='FPN', in_channels=[64, 128, 256, 512], out_channels=64, num_outs=5),
])
