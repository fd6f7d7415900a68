# OCRNet (Yuan et al., ECCV 2020) on HRNetV2-W18, Cityscapes, 512x1024 crops, 40k iterations on
# 4 GPUs x 2 images: mmseg's config unchanged (mmseg reports 77.72 mIoU on val). The OCR head
# is the second stage of a CascadeEncoderDecoder: it refines the FCN head's coarse logits.
_base_ = 'mmseg::ocrnet/ocrnet_hr18_4xb2-40k_cityscapes-512x1024.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)
