"""SRM: checkpoints of the authors' SRM-ResNet code.

Source: hyunjaelee410/style-based-recalibration-module, ``models/resnet.py``
(``resnet(depth, recalibration_type='srm')``) and ``models/recalibration_modules.py::SRMLayer``;
``imagenet.py`` saves ``{'state_dict': ...}`` from ``nn.DataParallel``.

Layout (read from the authors' code): torchvision's ResNet names and layout (stride on the 3x3
conv, BN defaults), and ``layer{i}.{j}.rclb.cfc`` (C, 2) and ``layer{i}.{j}.rclb.bn`` (BN(C)),
after ``bn3``, before the sum (the authors' code builds depths 50, 101, 152 only: its
``BasicBlock`` rejects the ``layer_idx`` argument its ``ResNet`` passes). Ours: ``mmattn.SRM`` at
``after_conv3`` (``srm.cfc``, ``srm.bn``), same tensors.

The authors' repository publishes no weights (its README gives training commands and result
figures only); this format is for checkpoints trained with that code. ``rclb`` is also the
name of the same code's SE and GE layers: a checkpoint of those is refused, naming the tensors
(SE: ``rclb.fc.*``; GE: ``rclb.conv.*``).

In train mode the converted backbone is not bit-identical to the authors' network: the
format's ``exactness`` says why, and the converter tests check its bound at SRM-ResNet-101.
"""
from ..common import ConverterFormat, Exactness
from ._plugin_resnet import convert_blocks, depths_of, every_block

_REPO = 'https://github.com/hyunjaelee410/style-based-recalibration-module'


def srm_convert(src_state, depth):

    def block(m, src, dst, stage, j):
        m.take(f'{src}rclb.cfc', f'{dst}srm.cfc', 'srm')
        m.bn(f'{src}rclb.bn', f'{dst}srm.bn', 'srm')

    return convert_blocks('srm', src_state, depth, block)


FORMATS = [
    ConverterFormat(
        name='srm',
        description='SRM-ResNet (authors\' models/resnet.py, SRM after bn3 in every block)',
        published=f'{_REPO}: no released weights (training code only)',
        backbone=every_block(dict(type='mmattn.SRM')),
        convert=srm_convert,
        # the authors' BasicBlock rejects the layer_idx its ResNet passes (and reads an
        # undefined is_ge): their code builds only the bottleneck depths
        depths=depths_of(50, 101, 152),
        figures=(),
        exactness=Exactness(
            differs=('train', ),
            why='the BN after the channel-wise FC normalises each channel over one style '
                'value per image (2 at batch 2), and mmattn.SRM sums the style mean '
                'in another order than the authors\' view().mean() (torch.var_mean): the BN '
                'and the depth amplify that rounding (the source network moves as much when '
                'its input moves by 1e-15)'),
    ),
]
