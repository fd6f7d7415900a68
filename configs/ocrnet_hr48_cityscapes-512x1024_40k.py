# OCRNet (Yuan et al., ECCV 2020) on HRNetV2-W48, Cityscapes, 512x1024 crops, 40k iterations on
# 4 GPUs x 2 images: mmseg's config unchanged (mmseg reports 80.58 mIoU on val).
_base_ = 'mmseg::ocrnet/ocrnet_hr48_4xb2-40k_cityscapes-512x1024.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)
