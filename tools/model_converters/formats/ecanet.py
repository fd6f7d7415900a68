"""ECA: the authors' ECA-ResNet ImageNet checkpoints.

Source: BangguWu/ECANet, ``models/eca_resnet.py`` (``eca_resnet18``-``eca_resnet152``) and
``models/eca_module.py::eca_layer``; checkpoints saved by ``main.py`` from ``nn.DataParallel``.

Layout (read from the authors' code): torchvision's ResNet names and layout (stride on the 3x3
conv, BN defaults), and ``layer{i}.{j}.eca.conv.weight``, a ``Conv1d(1, 1, k, no bias)`` of
shape (1, 1, k), after ``bn3`` (ResNet-18/34: after ``bn2``), before the sum. ``k`` is fixed
per stage (``k_size`` list), not the paper's adaptive rule: the released files are named by it,
``eca_resnet50_k3557`` (k = 3, 5, 5, 7), ``eca_resnet18_k3577``, ``eca_resnet34_k3357``,
``eca_resnet101_k3357``, ``eca_resnet152_k3357``. Ours: ``mmattn.ECA`` at ``after_conv3`` with
the stage's ``kernel_size`` (one plugin entry per stage), same tensor.
"""
from ..common import ConverterFormat
from ._plugin_resnet import attn_resnet, convert_blocks, depths_of, per_stage

_REPO = 'https://github.com/BangguWu/ECANet'
# the k_size of each released checkpoint (its file name), per depth
RELEASED_K = {18: (3, 5, 7, 7), 34: (3, 3, 5, 7), 50: (3, 5, 5, 7), 101: (3, 3, 5, 7),
              152: (3, 3, 5, 7)}


def eca_backbone(depth: int) -> dict:
    ks = RELEASED_K[depth]
    return attn_resnet(depth, plugins=per_stage(
        lambda i: dict(type='mmattn.ECA', kernel_size=ks[i])))


def eca_convert(src_state, depth):
    ks = RELEASED_K[depth]

    def block(m, src, dst, stage, j):
        key = f'{src}eca.conv.weight'
        m.check_shape(
            key, (1, 1, ks[stage - 1]),
            f'the released ECA-ResNet-{depth} (k_size {"".join(map(str, ks))}) and this '
            f'format\'s config have a (1, 1, {ks[stage - 1]}) kernel in stage {stage}. A '
            f'checkpoint trained with other kernel sizes needs a config with those (mmattn.ECA '
            f'kernel_size per stage)')
        m.take(key, f'{dst}eca.conv.weight', 'eca')

    return convert_blocks('eca', src_state, depth, block)


FORMATS = [
    ConverterFormat(
        name='eca',
        description='ECA-ResNet (authors\' eca_resnet, ECA after bn3 in every block, k per '
                    'stage as released)',
        published=f'{_REPO} (README, ImageNet table: eca_resnet50_k3557 etc., Google Drive / '
                  'BaiduYun)',
        backbone=eca_backbone,
        convert=eca_convert,
        depths=depths_of(18, 34, 50, 101, 152),
        figures=('ImageNet top-1 77.42 (ECA-Net50), 78.65 (ECA-Net101); authors\' README',
                 'COCO box AP 38.0 (Faster R-CNN ECA-Net50), 40.3 (ECA-Net101); authors\' '
                 'README'),
    ),
]
