# The toy DANet (./danet_r18-d8_toy-cityscapes.py) evaluated with the official Cityscapes
# evaluation as well: mmseg's CityscapesMetric maps the predicted train ids back to label ids
# and scores them with cityscapesscripts (pip install cityscapesscripts) against the
# *_gtFine_labelIds.png / *_gtFine_instanceIds.png maps the toy generator writes.
#   python tools/test.py configs/toy/danet_r18-d8_toy-cityscapes_citymetric.py CHECKPOINT
_base_ = './danet_r18-d8_toy-cityscapes.py'

test_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    # the prediction PNGs go here and are removed after the evaluation
    dict(type='CityscapesMetric', output_dir='work_dirs/toy_cityscapes_citymetric_results'),
]
