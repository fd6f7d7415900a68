"""Triplet attention: the authors' ResNet + triplet attention ImageNet checkpoints.

Source: landskape-ai/triplet-attention, ``MODELS/resnet.py`` (``ResidualNet('ImageNet', depth,
1000, 'TripletAttention')``) with ``MODELS/triplet_attention.py`` (the module the released
weights were trained with); the root ``triplet_attention.py`` is the same module with its
branches renamed, and is read too.

Layout (read from the authors' code): torchvision's ResNet names and layout (stride on the 3x3
conv, BN defaults), and ``layer{i}.{j}.triplet_attention`` after ``bn3`` (ResNet-18/34: after
``bn2``), before the sum, with three gates, each a k x k conv (2->1, no bias) + BN(1) (eps
1e-5, momentum 0.01):

- ``ChannelGateH.spatial.{conv,bn}`` (root file: ``cw.conv.{conv,bn}``): on x with C and H
  swapped; ours ``triplet.cw``;
- ``ChannelGateW.spatial.{conv,bn}`` (``hc.conv.{conv,bn}``): on x with C and W swapped; ours
  ``triplet.hc``;
- ``SpatialGate.spatial.{conv,bn}`` (``hw.conv.{conv,bn}``): on x; ours ``triplet.hw``.

Ours: ``mmattn.TripletAttention(kernel_size=k)`` at ``after_conv3``. The authors released
ResNet-50 weights with k = 7 (format ``triplet``) and k = 3 (``triplet-k3``).
"""
from ..common import ConversionError, ConverterFormat
from ._plugin_resnet import convert_blocks, depths_of, every_block

_REPO = 'https://github.com/landskape-ai/triplet-attention'
_BRANCHES = (('ChannelGateH', 'cw'), ('ChannelGateW', 'hc'), ('SpatialGate', 'hw'))


def _convert(name, kernel_size):

    def convert(src_state, depth):
        root = any('.triplet_attention.cw.' in k for k in src_state)

        def block(m, src, dst, stage, j):
            for theirs, ours in _BRANCHES:
                s = (f'{src}triplet_attention.{ours}.conv.' if root
                     else f'{src}triplet_attention.{theirs}.spatial.')
                d = f'{dst}triplet.{ours}.'
                w = src_state.get(s + 'conv.weight')
                if w is not None and tuple(w.shape) != (1, 2, kernel_size, kernel_size):
                    other = 'triplet-k3' if w.shape[-1] == 3 else 'triplet'
                    raise ConversionError(
                        f'{name}: {s}conv.weight has shape {tuple(w.shape)}, a '
                        f'{w.shape[-1]}x{w.shape[-1]} gate; this format is for k = '
                        f'{kernel_size}' + (f' (use format {other!r})'
                                            if w.shape[-1] in (3, 7) else ''))
                m.conv(s + 'conv', d + 'conv', 'triplet')
                m.bn(s + 'bn', d + 'bn', 'triplet')

        return convert_blocks(name, src_state, depth, block)

    return convert


def _format(name, k, top1):
    return ConverterFormat(
        name=name,
        description=f'ResNet + triplet attention (authors\' ResidualNet, gates {k}x{k}, after '
                    f'bn3 in every block)',
        published=f'{_REPO} (README, ImageNet table: ResNet-50 + Triplet Attention (k = {k}), '
                  'Google Drive)',
        backbone=every_block(dict(type='mmattn.TripletAttention', kernel_size=k)),
        convert=_convert(name, k),
        depths=depths_of(18, 34, 50, 101),
        figures=(f'ImageNet top-1 {top1} (ResNet-50 + triplet attention, k = {k}: top-1 error '
                 f'{100 - top1:.2f}%); authors\' README', ) + ((
                     'COCO box AP 39.2 (Faster R-CNN, ResNet-50 + triplet attention k = 7); '
                     'authors\' README', ) if k == 7 else ()),
    )


FORMATS = [_format('triplet', 7, 77.48), _format('triplet-k3', 3, 76.12)]
