"""SimAM: the authors' SimAM-ResNet and SimAM-ResNeXt ImageNet checkpoints.

Source: ZjjConan/SimAM, ``networks/imagenet/resnet.py`` (``resnet18``-``resnet152``,
``resnext50_32x4d``) and ``networks/attentions/simam_module.py``; checkpoints saved by
``main_imagenet.py`` (``state_dict`` of an ``nn.DataParallel``, with ``arch``).

Layout (read from the authors' code): torchvision's ResNet names and layout (7x7 stem, stride
on the 3x3 conv, BN defaults, ``downsample.0/1``, classifier ``fc``), with each block's 3x3
conv wrapped as ``conv2 = nn.Sequential(conv2, simam_module(width))``: SimAM runs on the conv's
output, before ``bn2`` (keys ``layer{i}.{j}.conv2.0.weight``; SimAM has no tensors). That is
``mmattn.AttnConv2d(attention=dict(type='mmattn.SimAM'))`` in the backbones' conv2 slot, whose
conv is ``conv2.weight``. The ResNeXt-50 32x4d's width is ``int(planes * 4 / 64) * 32``,
mmdet's ResNeXt rule.

lambda is not in the checkpoint. The configs here use 0.1, the value of the authors' ImageNet
training command (README, ``--attention_param 0.1``) and of their COCO detectors
(``attention_param=0.1``); a checkpoint trained with another ``--attention_param`` needs that
``e_lambda`` in the config.
"""
from ..common import ConverterFormat, KeyMapper, map_resnet
from ._plugin_resnet import depths_of

_REPO = 'https://github.com/ZjjConan/SimAM'
E_LAMBDA = 0.1
SIMAM_CONV = dict(type='mmattn.AttnConv2d', attention=dict(type='mmattn.SimAM',
                                                            e_lambda=E_LAMBDA))


def _backbone(resnext: bool):
    def build(depth: int) -> dict:
        cfg = dict(type='mmattn.AttnResNet', depth=depth)
        if resnext:
            cfg = dict(type='mmattn.AttnResNeXt', depth=depth, groups=32, base_width=4)
        cfg['conv2_cfg'] = dict(SIMAM_CONV, attention=dict(SIMAM_CONV['attention']))
        return cfg

    return build


def _convert(name: str):
    def convert(src_state, depth):
        mapper = KeyMapper(src_state, name)
        map_resnet(mapper, depth, src_names={'conv2': 'conv2.0'})
        for t in ('weight', 'bias'):
            mapper.drop(f'fc.{t}', 'ImageNet classifier head')
        return mapper.finish()

    return convert


DESCRIPTION = ('SimAM between the 3x3 conv and bn2 of every block (conv2 = Sequential(conv2, '
               f'simam)); lambda {E_LAMBDA}, as the authors\' ImageNet command and COCO configs '
               '(not in the checkpoint: one trained with another --attention_param needs that '
               'e_lambda)')
FORMATS = [
    ConverterFormat(
        name='simam',
        description=f'SimAM-ResNet (authors\' networks/imagenet/resnet.py): {DESCRIPTION}',
        published=f'{_REPO} (README, ImageNet table: SimAM-R18/R34/R50/R101, Google Drive / '
        'BaiduYunPan)',
        backbone=_backbone(resnext=False), convert=_convert('simam'),
        depths=depths_of(18, 34, 50, 101, 152),
        figures=('ImageNet top-1 71.31 (SimAM-R18), 74.49 (R34), 77.45 (R50), 78.65 (R101); '
                 'authors\' README',
                 'COCO box AP 39.2 (Faster R-CNN SimAM-R50), 41.2 (SimAM-R101); authors\' '
                 'README'),
        networks=('simam-r18', 'simam-r34', 'simam-r50', 'simam-r101')),
    ConverterFormat(
        name='simam-x32x4d',
        description='SimAM-ResNeXt-50 32x4d (authors\' networks/imagenet/resnet.py '
        f'resnext50_32x4d): {DESCRIPTION}',
        published=f'{_REPO} (README, ImageNet table: SimAM-RX50 (32x4d), Google Drive / '
        'BaiduYunPan)',
        backbone=_backbone(resnext=True), convert=_convert('simam-x32x4d'),
        depths=depths_of(50),
        figures=('ImageNet top-1 78.00 (SimAM-RX50 32x4d); authors\' README', ),
        networks=('simam-rx50', )),
]
