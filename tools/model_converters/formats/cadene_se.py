"""Cadene's ``pretrainedmodels`` SE-ResNets and SE-ResNeXts: the authors' Caffe weights
(hujie-frank/SENet) converted to PyTorch, the SE checkpoints most detection code starts from.

Layout (read in Cadene/pretrained-models.pytorch ``pretrainedmodels/models/senet.py``):

- stem ``layer0``: ``conv1`` (7x7, stride 2), ``bn1``, ReLU, then ``MaxPool2d(3, stride=2,
  ceil_mode=True)`` with no padding ("to preserve compatibility with Caffe weights"): the
  backbone config sets ``maxpool_cfg=dict(padding=0, ceil_mode=True)``, without which the
  pooling windows sit one pixel off the ones the weights were trained with;
- ``SEResNetBottleneck`` (se_resnet50/101/152) puts the stride in ``conv1`` (the 1x1), as
  Caffe's ResNets do: mmdet's ``style='caffe'``. ``SEResNeXtBottleneck`` (se_resnext50_32x4d,
  se_resnext101_32x4d) puts it in ``conv2``, mmdet's default ``style='pytorch'``, with width
  ``floor(planes * 4 / 64) * 32``, mmdet's ResNeXt rule for ``groups=32, base_width=4``;
- ``se_module`` (``fc1``, ``fc2``: 1x1 convs with biases, ``C // 16`` wide) after ``bn3``,
  before the residual addition: ``mmattn.SE(reduction=16)`` at ``after_conv3``, named ``se``;
- ``downsample.0/1`` (1x1 conv, BN); classifier ``last_linear`` (dropped).

The files were saved before PyTorch 0.4.1 and hold no BN ``num_batches_tracked``: those are
written as 0.
"""
from ..common import SE_PLUGIN, ConverterFormat, convert_se_resnet

CAFFE_MAXPOOL = dict(padding=0, ceil_mode=True)
CADENE = 'https://github.com/Cadene/pretrained-models.pytorch'
CADENE_URL = 'http://data.lip6.fr/cadene/pretrainedmodels/'

UNSUPPORTED = (
    'senet154: a three-conv stem 64, 64, 128 wide, 3x3 downsampling convs and bottlenecks '
    '2x / 4x planes wide; none of our backbones has that layout', )


def _backbone(resnext: bool):
    def build(depth: int) -> dict:
        if resnext:
            cfg = dict(type='mmattn.AttnResNeXt', depth=depth, groups=32, base_width=4)
        else:
            cfg = dict(type='mmattn.AttnResNet', depth=depth, style='caffe')
        cfg['maxpool_cfg'] = dict(CAFFE_MAXPOOL)
        cfg['plugins'] = [dict(SE_PLUGIN)]
        return cfg

    return build


def _convert(name: str):
    def convert(src_state, depth):
        return convert_se_resnet(name, src_state, depth, 'se_module', 'last_linear',
                                 src_stem='layer0.')

    return convert


README_TABLE = f'{CADENE}#evaluation-on-imagenet'

FORMATS = [
    ConverterFormat(
        name='cadene-se',
        description='Cadene pretrainedmodels se_resnet50/101/152 (the authors\' Caffe '
        'SE-ResNets; stride in the 1x1 conv, Caffe max-pool)',
        published=f'{CADENE} (pretrainedmodels.se_resnet50 etc.; files se_resnet50-ce0d4300.pth, '
        f'se_resnet101-7e38fcc6.pth, se_resnet152-d17c99b7.pth under {CADENE_URL})',
        backbone=_backbone(resnext=False), convert=_convert('cadene-se'),
        # timm's legacy_* models are Cadene's SENet module and files
        networks=('se_resnet50', 'se_resnet101', 'se_resnet152', 'legacy_seresnet50',
                  'legacy_seresnet101', 'legacy_seresnet152'),
        figures=('ImageNet top-1 (Cadene\'s evaluation of the port / the authors\' Caffe '
                 'model): se_resnet50 77.636 / 77.63, se_resnet101 78.396 / 78.25, '
                 f'se_resnet152 78.658 / 78.66 ({README_TABLE})', ),
        unsupported=UNSUPPORTED),
    ConverterFormat(
        name='cadene-se-x32x4d',
        description='Cadene pretrainedmodels se_resnext50_32x4d / se_resnext101_32x4d (the '
        'authors\' Caffe SE-ResNeXts; Caffe max-pool)',
        published=f'{CADENE} (pretrainedmodels.se_resnext50_32x4d, se_resnext101_32x4d; files '
        f'se_resnext50_32x4d-a260b3a4.pth, se_resnext101_32x4d-3b2fe3d8.pth under '
        f'{CADENE_URL})',
        backbone=_backbone(resnext=True), convert=_convert('cadene-se-x32x4d'),
        networks=('se_resnext50_32x4d', 'se_resnext101_32x4d', 'legacy_seresnext50_32x4d',
                  'legacy_seresnext101_32x4d', 'legacy_se_resnext50_32x4d',
                  'legacy_se_resnext101_32x4d'),
        depths=(50, 101),
        figures=('ImageNet top-1 (Cadene\'s evaluation of the port / the authors\' Caffe '
                 'model): se_resnext50_32x4d 79.076 / 79.03, se_resnext101_32x4d 80.236 / '
                 f'80.19 ({README_TABLE})', )),
]
