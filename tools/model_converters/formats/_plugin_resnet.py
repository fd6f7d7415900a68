"""Helpers shared by the formats whose source is a torchvision-layout ResNet with one attention
module per block (or between stages): the backbone config and the per-block mapping. No
``FORMATS`` here.

Every source family converted with these helpers was checked (README, "Starting from the
authors' ImageNet weights") to have torchvision's block layout: the stride on the 3x3 conv
(mmdet's ``style='pytorch'``, the default), PyTorch's BatchNorm defaults (eps 1e-5), the
shortcut ``downsample.0`` (1x1 conv) and ``downsample.1`` (BN), and the attention module after
the last BN of the residual branch, before the sum (mmdet's ``position='after_conv3'``; on
ResNet-18/34's BasicBlock our ``after_conv3`` is the same point, after ``bn2``).
"""
import copy
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import torch

from ..common import RESNET_ARCH, KeyMapper, Report, map_resnet

# A block's attention mapping: (mapper, src_block_prefix, dst_block_prefix, stage, block).
BlockMap = Callable[[KeyMapper, str, str, int, int], None]


def attn_resnet(depth: int, plugins: Optional[Sequence[dict]] = None,
                stage_plugins: Optional[Sequence[dict]] = None) -> dict:
    """``mmattn.AttnResNet`` config (type, depth, plugins). The converted weights hold the
    attention modules too: a detector that freezes stages should freeze them with their stage
    (``frozen_stages=1, freeze_plugins=True``), as the authors' detectors did."""
    cfg = dict(type='mmattn.AttnResNet', depth=depth)
    if plugins:
        cfg['plugins'] = list(plugins)
    if stage_plugins:
        cfg['stage_plugins'] = list(stage_plugins)
    return cfg


def every_block(cfg: dict,
                stages: Optional[Sequence[bool]] = None) -> Callable[[int], dict]:
    """A format's ``backbone``: ``cfg`` after the last BN of every block (of the stages in
    ``stages``, all by default), where the module's arguments are the same in every stage."""
    plugin = dict(cfg=cfg, position='after_conv3')
    if stages is not None:
        plugin['stages'] = stages

    def build(depth: int) -> dict:
        # a fresh copy each time: a caller may edit the config it is given
        return attn_resnet(depth, plugins=[copy.deepcopy(plugin)])

    return build


def per_stage(cfg_of_stage: Callable[[int], dict], position: str = 'after_conv3',
              stages: Sequence[bool] = (True, True, True, True)) -> list:
    """One plugin entry per stage (stage 0-3) where a module's arguments change by stage."""
    out = []
    for i, on in enumerate(stages):
        if on:
            out.append(dict(cfg=cfg_of_stage(i), position=position,
                            stages=tuple(j == i for j in range(4))))
    return out


def convert_blocks(fmt: str, src_state: Mapping[str, torch.Tensor], depth: int,
                   block_map: BlockMap, stage_on: Sequence[bool] = (True, True, True, True),
                   src_prefix: str = '', drop_head: bool = True,
                   extra: Optional[Callable[[KeyMapper], None]] = None
                   ) -> Tuple[Dict[str, torch.Tensor], Report]:
    """The ResNet body with ``block_map`` for the blocks of the stages in ``stage_on``.

    ``src_prefix``: the source keys' prefix (``'backbone.'`` in a detector checkpoint).
    ``drop_head``: drop the ImageNet classifier ``fc.weight``/``fc.bias``.
    ``extra``: maps what lies outside the blocks (BAM's modules between stages).
    """
    mapper = KeyMapper(src_state, fmt)

    def hook(m, src, dst, stage, block):
        if stage_on[stage - 1]:
            block_map(m, src, dst, stage, block)

    map_resnet(mapper, depth, src_stem=src_prefix, src_layer=src_prefix + 'layer{}.{}.',
               block_hook=hook)
    if extra is not None:
        extra(mapper)
    if drop_head:
        for name in ('weight', 'bias'):
            mapper.drop(f'{src_prefix}fc.{name}', 'the ImageNet classifier')
    return mapper.finish()


def depths_of(*depths: int) -> Tuple[int, ...]:
    for d in depths:
        assert d in RESNET_ARCH, d
    return tuple(depths)
