"""Helpers of the formats whose ResNets have an SK unit in place of a block's 3x3 conv (timm's
SK nets, implus/PytorchInsight's SK-ResNet*). No ``FORMATS`` here.

Their blocks hold the SK unit where our backbones' conv slot puts ``mmattn.SKConv``
(``conv1`` of a BasicBlock, ``conv2`` of a Bottleneck: ``conv1_cfg`` / ``conv2_cfg``); the unit
ends with its own norms and activations, so those blocks have no ``bn1`` / ``bn2``. SKConv's
tensors: ``branches.{m}.conv`` / ``branches.{m}.bn`` (branch m), ``fc_reduce.conv`` /
``fc_reduce.bn`` (the fuse layer) and ``fc_select`` (the M select convs as one, branch m's
logits in output channels ``[m * C, (m + 1) * C)``).
"""
from typing import Callable

from ..common import RESNET_ARCH, ConversionError, KeyMapper

# (mapper, src block prefix, dst block prefix, stage 1-4, block index)
BlockMap = Callable[[KeyMapper, str, str, int, int], None]


def map_sk_resnet(mapper: KeyMapper, depth: int, block_map: BlockMap,
                  head: str = 'fc') -> None:
    """A torchvision-layout ResNet (7x7 stem ``conv1``/``bn1``, ``downsample.0/1``) whose
    blocks ``block_map`` maps (every conv and norm but the shortcut's); the ImageNet classifier
    ``head`` is dropped."""
    if depth not in RESNET_ARCH:
        raise ConversionError(f'{mapper.fmt}: depth {depth} is not one of '
                              f'{sorted(RESNET_ARCH)}')
    bottleneck, blocks = RESNET_ARCH[depth]
    mapper.conv('conv1', 'conv1', 'stem')
    mapper.bn('bn1', 'bn1', 'stem')
    for i, n in enumerate(blocks, start=1):
        for j in range(n):
            src, dst = f'layer{i}.{j}.', f'layer{i}.{j}.'
            block_map(mapper, src, dst, i, j)
            # the first block of each stage changes width or stride, except ResNet-18/34's
            # first stage (64 -> 64, stride 1)
            if j == 0 and (bottleneck or i > 1):
                mapper.conv(src + 'downsample.0', dst + 'downsample.0', 'downsample')
                mapper.bn(src + 'downsample.1', dst + 'downsample.1', 'downsample')
    for name in ('weight', 'bias'):
        mapper.drop(f'{head}.{name}', 'ImageNet classifier head')


def sk_conv_tensors(mapper: KeyMapper, dst: str, branches, fuse_conv: str, fuse_bn: str,
                    select: str) -> None:
    """Map one SK unit onto ``mmattn.SKConv`` at ``dst`` (``'layer1.0.conv2.'``):
    ``branches``: the source (conv, norm) of each branch, in order; the fuse conv and norm and
    the select conv by their source names."""
    for m, (conv, norm) in enumerate(branches):
        mapper.conv(conv, f'{dst}branches.{m}.conv', 'sk')
        mapper.bn(norm, f'{dst}branches.{m}.bn', 'sk')
    mapper.conv(fuse_conv, f'{dst}fc_reduce.conv', 'sk')
    mapper.bn(fuse_bn, f'{dst}fc_reduce.bn', 'sk')
    mapper.conv(select, f'{dst}fc_select', 'sk')
