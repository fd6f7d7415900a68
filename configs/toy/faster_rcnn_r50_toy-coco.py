# The toy Faster R-CNN without attention: faster_rcnn_se_r50_toy-coco.py with the SE plugin
# removed, everything else shared, for the README's with/without comparison.
_base_ = './faster_rcnn_se_r50_toy-coco.py'

model = dict(backbone=dict(plugins=None))
