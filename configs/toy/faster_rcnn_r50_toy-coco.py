# The toy Faster R-CNN without attention: faster_rcnn_se_r50_toy-coco.py with the SE plugin
# removed, everything else shared, for the with/without comparison (docs/en/benchmarks.md).
_base_ = './faster_rcnn_se_r50_toy-coco.py'

model = dict(backbone=dict(plugins=None))
