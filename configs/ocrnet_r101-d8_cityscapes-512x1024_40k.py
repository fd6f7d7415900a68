# OCRNet (Yuan et al., ECCV 2020) on ResNet-101-D8, Cityscapes, 512x1024 crops, 40k iterations
# on 4 GPUs x 2 images: mmseg's config unchanged. The baseline of the gated variant
# ./ocrnet_r101-d8_sge-c3_cityscapes-512x1024_40k.py (mmseg's HRNet takes no plugins).
_base_ = 'mmseg::ocrnet/ocrnet_r101-d8_4xb2-40k_cityscapes-512x1024.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)
