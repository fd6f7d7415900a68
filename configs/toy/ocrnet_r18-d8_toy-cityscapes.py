# OCRNet (../ocrnet_r101-d8_cityscapes-512x1024_40k.py: mmseg's CascadeEncoderDecoder whose OCR
# head refines the FCN head's coarse logits) shrunk like ./danet_r18-d8_toy-cityscapes.py: a
# quarter-width ResNet-18-D8 from scratch, BN instead of SyncBN, and the shared toy data,
# schedule and runtime (./_base_/toy-cityscapes.py).
_base_ = ['mmseg::_base_/models/ocrnet_r50-d8.py', './_base_/toy-cityscapes.py']

norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(size=_base_.crop_size)

# ResNet-18 at a quarter of its width (16/32/64/128 channels), from scratch
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(depth=18, stem_channels=16, base_channels=16, norm_cfg=norm_cfg),
    # a list in a child config replaces the base's list: both heads are written out, as in
    # mmseg's ocrnet_r50-d8.py with the toy widths
    decode_head=[
        dict(type='FCNHead', in_channels=64, in_index=2, channels=16, num_convs=1,
             concat_input=False, dropout_ratio=0.1, num_classes=19, norm_cfg=norm_cfg,
             align_corners=False,
             loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
        dict(type='OCRHead', in_channels=128, in_index=3, channels=32, ocr_channels=16,
             dropout_ratio=0.1, num_classes=19, norm_cfg=norm_cfg, align_corners=False,
             loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    ])
