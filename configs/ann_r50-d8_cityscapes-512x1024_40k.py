# ANN, asymmetric non-local (Zhu et al., ICCV 2019), ResNet-50-D8, Cityscapes, 512x1024 crops,
# 40k iterations on 4 GPUs x 2 images: mmseg's config with mmattn's drop-in head (mmseg reports 77.40 mIoU).
_base_ = 'mmseg::ann/ann_r50-d8_4xb2-40k_cityscapes-512x1024.py'

custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)

# mmattn's AttnANNHead: mmseg's ANNHead (same arguments, same outputs for the same weights, and
# mmseg's checkpoints load), built from mmattn's modules so its attention holds no HWxHW matrix
# it does not need. Drop this line for mmseg's own head.
model = dict(decode_head=dict(type='mmattn.AttnANNHead'))
