"""A neck that runs an attention module on each level of a feature pyramid.

Detectors and segmentors pass a tuple of feature maps from the backbone to the neck; this one
applies a registered attention module to each of them (or to the levels it is told to), with
its own weights on every level, and returns a tuple of the same shapes. It composes with mmdet's
and mmseg's necks through a list, in either order::

    neck=[dict(type='mmattn.AttnNeck', in_channels=[256, 512, 1024, 2048],
               attention=dict(type='mmattn.SE')),
          dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5)]

    neck=[dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5),
          dict(type='mmattn.AttnNeck', in_channels=[256] * 5, attention=dict(type='mmattn.SE'))]

(mmengine builds a list of module configs as an ``nn.Sequential``.) Placed before the FPN it is
the between-stage placement that BAM (Park et al., BMVC 2018) and residual attention
(Wang et al., CVPR 2017) use, applied to the stages' outputs.
"""
import copy
from typing import List, Optional, Sequence, Union

import torch
from mmengine.model import BaseModule
from torch import nn

from mmattn.registry import MODELS


@MODELS.register_module()
class AttnNeck(BaseModule):
    """Apply an attention module to every level (or to chosen levels) of a multi-level input.

    Args:
        in_channels: the channel count of each input level, in order (an int for one level).
        attention: the module's config, e.g. ``dict(type='mmattn.SE', reduction=16)``, built
            once per level with that level's ``in_channels``; or a list with one config (or
            ``None``) per level. Any module of the registry that takes ``in_channels`` and keeps
            its input's shape works, including mmcv's (``ContextBlock``, ``NonLocal2d``).
        levels: the indices of the levels to apply it to (negative indices count from the
            end); ``None`` means all. The other levels pass through unchanged.
        init_cfg: mmengine init config.
    """

    def __init__(self, in_channels: Union[int, Sequence[int]],
                 attention: Union[dict, Sequence[Optional[dict]]],
                 levels: Optional[Sequence[int]] = None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if isinstance(in_channels, int):
            in_channels = [in_channels]
        in_channels = list(in_channels)
        if not in_channels or not all(isinstance(c, int) and c > 0 for c in in_channels):
            raise ValueError(f'AttnNeck: in_channels must be a list of positive ints, one per '
                             f'input level, got {in_channels!r}')
        self.in_channels = in_channels
        num = len(in_channels)

        if attention is None or isinstance(attention, dict):
            cfgs = [attention] * num
        else:
            cfgs = list(attention)
            if len(cfgs) != num:
                raise ValueError(f'AttnNeck: attention is a list of {len(cfgs)} configs but '
                                 f'in_channels has {num} levels; give one config (or None) '
                                 f'per level, or a single dict for all of them')
        if levels is None:
            chosen = set(range(num))
        else:
            chosen = set()
            for lvl in levels:
                if not isinstance(lvl, int) or not -num <= lvl < num:
                    raise ValueError(f'AttnNeck: levels holds {lvl!r}, but there are {num} '
                                     f'levels (in_channels={in_channels}); use indices in '
                                     f'0..{num - 1} (or negative ones from the end)')
                chosen.add(lvl % num)
        self.levels = tuple(sorted(i for i in chosen if cfgs[i] is not None))
        if not self.levels:
            raise ValueError('AttnNeck: no level gets an attention module; give an '
                             '`attention` config and levels that select at least one level')

        self.attentions = nn.ModuleList()
        for i, (channels, cfg) in enumerate(zip(in_channels, cfgs)):
            if i in self.levels:
                self.attentions.append(self._build(cfg, channels, i))
            else:
                self.attentions.append(nn.Identity())

    @staticmethod
    def _build(cfg: dict, channels: int, level: int) -> nn.Module:
        if not isinstance(cfg, dict) or 'type' not in cfg:
            raise TypeError(f'AttnNeck: the attention config of level {level} must be a dict '
                            f"with a 'type', e.g. dict(type='mmattn.SE'), got {cfg!r}")
        cfg = copy.deepcopy(dict(cfg))
        given = cfg.pop('in_channels', None)
        if given is not None and given != channels:
            raise ValueError(f'AttnNeck: the attention config sets in_channels={given}, but '
                             f'level {level} has {channels} channels; leave in_channels out '
                             f'of the attention config (the neck fills it in from its own '
                             f'in_channels list)')
        cfg['in_channels'] = channels
        return MODELS.build(cfg)

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple:
        if isinstance(inputs, torch.Tensor) or not isinstance(inputs, (list, tuple)):
            raise TypeError(f'AttnNeck expects a tuple of feature maps (one per level, as '
                            f'backbones and FPNs return them), got {type(inputs).__name__}')
        if len(inputs) != len(self.in_channels):
            raise ValueError(
                f'AttnNeck(in_channels={self.in_channels}) got {len(inputs)} levels; set '
                f'in_channels to one entry per level of what comes before it (after an FPN '
                f'with num_outs=5 that is [out_channels] * 5)')
        outs: List[torch.Tensor] = []
        for i, (x, module) in enumerate(zip(inputs, self.attentions)):
            if x.dim() != 4 or x.shape[1] != self.in_channels[i]:
                raise ValueError(
                    f'AttnNeck: level {i} has shape {tuple(x.shape)}, expected '
                    f'{self.in_channels[i]} channels (in_channels={self.in_channels}); set '
                    f'in_channels to the channel counts of the levels it is given')
            outs.append(module(x))
        return tuple(outs)

    def extra_repr(self) -> str:
        return f'in_channels={self.in_channels}, levels={self.levels}'
