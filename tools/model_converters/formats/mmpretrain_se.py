"""mmpretrain's SE-ResNets and SE-ResNeXts: OpenMMLab's own ImageNet classifiers
(``SEResNet`` / ``SEResNeXt`` inside an ``ImageClassifier``).

Layout (read in open-mmlab/mmpretrain ``mmpretrain/models/backbones/seresnet.py``,
``seresnext.py``, ``resnet.py`` and ``mmpretrain/models/utils/se_layer.py``, v1.2.0): the
classifier's state dict, with the backbone under ``backbone.`` and the linear head under
``head.fc``. The backbone is mmpretrain's ``ResNet`` with the names mmdet's has (``conv1``,
``bn1``, ``layer{i}.{j}.conv{1,2,3}`` / ``bn{1,2,3}``, ``downsample.0/1``, stride on the 3x3
conv: ``style='pytorch'``), and in each ``SEBottleneck`` an ``SELayer`` named ``se_layer``
after ``bn3``, before the residual addition: ``conv1`` (1x1 conv with bias, then ReLU) and
``conv2`` (1x1 conv with bias, then sigmoid), mmcv ``ConvModule``s whose convs are
``se_layer.conv{1,2}.conv``; the gate multiplies the block's output. That is ``mmattn.SE`` at
``after_conv3``: ``se_layer.conv1.conv`` is our ``se.fc1``, ``se_layer.conv2.conv`` our
``se.fc2``.

``SELayer`` squeezes to ``make_divisible(C // 16, 8)`` channels, which for every width of a
ResNet-50/101/152 (256 to 2048) is ``C // 16``, ``mmattn.SE(reduction=16)``'s width. The
SE-ResNeXts' 3x3 convs are ``groups * width_per_group * planes // 64`` wide, mmdet's ResNeXt
rule for ``base_width = width_per_group``.
"""
from ..common import SE_PLUGIN, ConverterFormat, KeyMapper, map_resnet

MMPRETRAIN = 'https://github.com/open-mmlab/mmpretrain'
ZOO = f'{MMPRETRAIN}/tree/main/configs/seresnet'
WEIGHTS = 'https://download.openmmlab.com/mmclassification/v0/se-resnet/'


def _backbone(groups: int = 1, base_width: int = 4):
    def build(depth: int) -> dict:
        if groups > 1:
            cfg = dict(type='mmattn.AttnResNeXt', depth=depth, groups=groups,
                       base_width=base_width)
        else:
            cfg = dict(type='mmattn.AttnResNet', depth=depth)
        cfg['plugins'] = [dict(SE_PLUGIN)]
        return cfg

    return build


def _convert(name: str):
    def convert(src_state, depth):
        mapper = KeyMapper(src_state, name)

        def se(m: KeyMapper, src: str, dst: str, stage: int, block: int) -> None:
            m.conv(f'{src}se_layer.conv1.conv', f'{dst}se.fc1', 'se', bias=True)
            m.conv(f'{src}se_layer.conv2.conv', f'{dst}se.fc2', 'se', bias=True)

        map_resnet(mapper, depth, src_stem='backbone.', src_layer='backbone.layer{}.{}.',
                   block_hook=se)
        for t in ('weight', 'bias'):
            mapper.drop(f'head.fc.{t}', 'ImageNet classifier head (LinearClsHead)')
        return mapper.finish()

    return convert


FORMATS = [
    ConverterFormat(
        name='mmpretrain-se',
        description='mmpretrain SEResNet-50/101/152 classifiers (SE after bn3 of every '
        'bottleneck; backbone. and head. keys)',
        published=f'mmpretrain seresnet50_8xb32_in1k, seresnet101_8xb32_in1k ({ZOO}; files '
        f'se-resnet50_batch256_imagenet_20200804-ae206104.pth, '
        f'se-resnet101_batch256_imagenet_20200804-ba5b51d4.pth under {WEIGHTS})',
        backbone=_backbone(), convert=_convert('mmpretrain-se'),
        layer_prefix='backbone.layer{}.',
        networks=('seresnet50_8xb32_in1k', 'seresnet101_8xb32_in1k',
                  'se-resnet50_batch256_imagenet', 'se-resnet101_batch256_imagenet'),
        figures=(f'ImageNet top-1 / top-5 (mmpretrain\'s model zoo, {ZOO}): '
                 'seresnet50_8xb32_in1k 77.74 / 93.84 (28.09 M parameters, 4.13 GFLOPs), '
                 'seresnet101_8xb32_in1k 78.26 / 94.07 (49.33 M, 7.86 GFLOPs)', )),
    ConverterFormat(
        name='mmpretrain-se-x32x4d',
        description='mmpretrain SEResNeXt-50/101/152 (32x4d) classifiers (SE after bn3 of '
        'every bottleneck; backbone. and head. keys)',
        published=f'mmpretrain configs seresnext50-32x4d_8xb32_in1k, '
        f'seresnext101-32x4d_8xb32_in1k ({ZOO}); mmpretrain releases no weights for them: '
        f'a model trained with those configs',
        backbone=_backbone(groups=32, base_width=4),
        convert=_convert('mmpretrain-se-x32x4d'),
        layer_prefix='backbone.layer{}.',
        networks=('seresnext50-32x4d_8xb32_in1k', 'seresnext101-32x4d_8xb32_in1k')),
]
