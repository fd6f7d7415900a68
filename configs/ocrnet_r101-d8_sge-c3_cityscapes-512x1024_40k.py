# OCRNet R101-D8 on Cityscapes (./ocrnet_r101-d8_cityscapes-512x1024_40k.py) with spatial group
# enhance (SGE, Li et al., 2019) after conv3 of every bottleneck, where its authors put it; 64
# groups as theirs. SGE has no norm layer. The variant is on the ResNet-101-D8 OCRNet because
# mmseg's HRNet backbone of the HR18/HR48 configs takes no plugins.
_base_ = './ocrnet_r101-d8_cityscapes-512x1024_40k.py'

model = dict(
    backbone=dict(plugins=[
        dict(cfg=dict(type='mmattn.SGE', groups=64),
             stages=(True, True, True, True),
             position='after_conv3')
    ]))
