"""FcaNet: the authors' FcaNet ImageNet checkpoints.

Source: cfzd/FcaNet, ``model/fcanet.py`` (``fcanet34``-``fcanet152``: torchvision's ``ResNet``
with ``FcaBottleneck`` / ``FcaBasicBlock``) and ``model/layer.py::MultiSpectralAttentionLayer``.

Layout (read from the authors' code): torchvision's ResNet names and layout (stride on the 3x3
conv, BN defaults), and in every block, after ``bn3`` (FcaNet-34: after ``bn2``), before the
sum, ``layer{i}.{j}.att``:

- ``att.dct_layer.weight``: the fixed DCT basis, a *buffer* of shape (C, s, s) with the basis
  size s = 56, 28, 14, 7 in stages 1-4 (``c2wh`` keyed by the block's ``planes``), 'top16'
  frequencies;
- ``att.fc.0.weight`` (C/16, C) and ``att.fc.2.weight`` (C, C/16), Linear without bias.

Ours: ``mmattn.FcaNet(dct_size=s, freq_sel_method='top16', reduction=16)`` at ``after_conv3``,
one plugin entry per stage; the basis buffer ``fca.dct_basis`` is taken from the checkpoint
(the conversion reports how far it is from the 'top16' DCT basis; the authors' "learnable
tensor" variants store a trained tensor under the same name, which is then kept as trained).

The converted backbone runs the authors' operations in their order: its stage outputs equal
the authors' network's bit for bit (the format's ``exactness``; the converter tests check it at
FcaNet-101).
"""
from ..common import ConverterFormat, Exactness
from ._plugin_resnet import attn_resnet, convert_blocks, depths_of, per_stage

_REPO = 'https://github.com/cfzd/FcaNet'
DCT_SIZES = (56, 28, 14, 7)


def fcanet_backbone(depth: int) -> dict:
    return attn_resnet(depth, plugins=per_stage(lambda i: dict(
        type='mmattn.FcaNet', dct_size=DCT_SIZES[i], freq_sel_method='top16', reduction=16)))


def fcanet_convert(src_state, depth):
    from mmattn.models.channel.fcanet import frequency_indices, multi_spectral_basis
    worst = [0.0]

    def block(m, src, dst, stage, j):
        s, d = f'{src}att.', f'{dst}fca.'
        key = s + 'dct_layer.weight'
        size = DCT_SIZES[stage - 1]
        t = m.check_shape(key, (None, size, size), f'stage {stage} of the authors\' FcaNet '
                          f'(and this config) has a {size}x{size} basis')
        if t is not None:
            ref = multi_spectral_basis(t.shape[0], (size, size), frequency_indices('top16'))
            worst[0] = max(worst[0], (t.double() - ref.double()).abs().max().item())
        m.take(key, d + 'dct_basis', 'fcanet (DCT basis buffer)')
        m.take(s + 'fc.0.weight', d + 'fc1.weight', 'fcanet')
        m.take(s + 'fc.2.weight', d + 'fc2.weight', 'fcanet')

    dst, report = convert_blocks('fcanet', src_state, depth, block)
    report.notes.append(f'largest difference between a DCT basis in the checkpoint and the '
                        f'\'top16\' basis mmattn.FcaNet builds: {worst[0]:.3g}'
                        + (' (the checkpoint\'s basis is kept)' if worst[0] > 1e-6 else ''))
    return dst, report


FORMATS = [
    ConverterFormat(
        name='fcanet',
        description='FcaNet (authors\' model/fcanet.py on torchvision\'s ResNet, multi-spectral '
                    'attention after bn3 in every block, DCT basis 56/28/14/7 per stage)',
        published=f'{_REPO} (README, "Image Classification" table: FcaNet34/50/101/152, '
                  'Google Drive / BaiduDrive)',
        backbone=fcanet_backbone,
        convert=fcanet_convert,
        depths=depths_of(34, 50, 101, 152),
        figures=('ImageNet top-1 78.52 (FcaNet50), 79.64 (FcaNet101); authors\' README',
                 'COCO box AP 39.0 (Faster R-CNN FcaNet50), 41.2 (FcaNet101); authors\' README'),
        # the authors' pooling and weighted sum, op by op (mmattn.FcaNet has no fast path)
        exactness=Exactness(identical=True),
    ),
]
