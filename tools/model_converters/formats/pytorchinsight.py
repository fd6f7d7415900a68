"""SGE: the authors' SGE-ResNet ImageNet checkpoints.

Source: implus/PytorchInsight, ``classification/models/imagenet/resnet_sge.py``
(``sge_resnet18``-``sge_resnet152``, ``SpatialGroupEnhance(64)``).

Layout (read from the authors' code): torchvision's ResNet names and layout (stride on the 3x3
conv, BN defaults), and ``layer{i}.{j}.sge.weight`` / ``.sge.bias``, each (1, 64, 1, 1), after
``bn3`` (ResNet-18/34: after ``bn2``), before the sum. Ours: ``mmattn.SGE(groups=64)`` at
``after_conv3``, same tensors.

The same repository also released CBAM- and BAM-ResNet weights: its ``resnet_cbam.py`` and
``resnet_bam.py`` are copies of Jongchan/attention-module's ``ResidualNet``, read by the
``cbam`` and ``bam`` formats (``attention_module.py``). Its SK-ResNet* (``resnet_sk.py``)
replaces the 3x3 conv: format ``sknet`` (``sknet.py``).
"""
from ..common import ConverterFormat
from ._plugin_resnet import convert_blocks, depths_of, every_block

_REPO = 'https://github.com/implus/PytorchInsight'
GROUPS = 64


def sge_convert(src_state, depth):

    def block(m, src, dst, stage, j):
        for name in ('weight', 'bias'):
            key = f'{src}sge.{name}'
            m.check_shape(key, (1, GROUPS, 1, 1), f'the authors\' SGE (and this config) has '
                          f'{GROUPS} groups: (1, {GROUPS}, 1, 1)')
            m.take(key, f'{dst}sge.{name}', 'sge')

    return convert_blocks('sge', src_state, depth, block)


FORMATS = [
    ConverterFormat(
        name='sge',
        description='SGE-ResNet (authors\' resnet_sge, SGE with 64 groups after bn3 in every '
                    'block)',
        published=f'{_REPO} (README, "Results of SGENet": SGE-ResNet50/101, Google Drive / '
                  'BaiduDrive)',
        backbone=every_block(dict(type='mmattn.SGE', groups=GROUPS)),
        convert=sge_convert,
        depths=depths_of(18, 34, 50, 101, 152),
        figures=('ImageNet top-1 77.584 (SGE-ResNet50), 78.798 (SGE-ResNet101); authors\' '
                 'README',
                 'COCO box AP 38.7 (Faster R-CNN SGE-ResNet50 FPN), 41.0 (SGE-ResNet101); '
                 'authors\' README'),
    ),
]
