"""Spatial Pyramid Attention (the SPP-SE layer).

Guo, Ma, Sansom, McGuire, Kalaani, Chen, Tang, Yang, Fu. "SPANet: Spatial Pyramid Attention
Network for Enhanced Image Recognition", ICME 2020.
Authors' code: https://github.com/13952522076/SPANet (``models/spp_se_resnet.py::SPPSELayer``).
"""
import torch
from mmcv.cnn import build_activation_layer
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..layers import adaptive_avg_pool2d
from ..utils import reduced_channels


@MODELS.register_module()
class SPA(BaseAttention):
    """SPA: pyramid of adaptive average pools -> Linear -> ReLU -> Linear -> sigmoid -> x * g.

    The pools at sizes 1, 2 and 4 are each flattened channel-major (C, s, s), as the authors'
    ``view(b, s*s*c)`` does, and concatenated to a vector of 21C; the two linears have no bias.

    Args:
        in_channels: C.
        reduction: r (16). The reduced width is ``max(1, C // r)``.
        pool_sizes: the pyramid's output sizes ((1, 2, 4)).
        act_cfg: the MLP's activation (ReLU).
        gate_cfg: the gate's activation (sigmoid).
        init_cfg: mmengine init config.
    """

    _abbr_ = 'spa'
    paper = ('SPANet: Spatial Pyramid Attention Network for Enhanced Image Recognition '
             '(Guo et al., ICME 2020)')
    code = 'https://github.com/13952522076/SPANet'
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    placement = dict(plugins=[
        dict(cfg=dict(type='mmattn.SPA', reduction=16, pool_sizes=(1, 2, 4)),
             stages=(True, True, True, True), position='after_conv3')])
    channel_gates = {'channel gate': 'gate'}
    maps_caption = 'channel weights: the output of the gate (sigmoid), one per channel'

    def __init__(self, in_channels, *, reduction=16, pool_sizes=(1, 2, 4),
                 act_cfg=dict(type='ReLU'), gate_cfg=dict(type='Sigmoid'), init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        self.reduction = reduction
        self.pool_sizes = tuple(int(s) for s in pool_sizes)
        rd = reduced_channels(in_channels, reduction)
        self.fc1 = nn.Linear(in_channels * sum(s * s for s in self.pool_sizes), rd, bias=False)
        self.act = build_activation_layer(act_cfg)
        self.fc2 = nn.Linear(rd, in_channels, bias=False)
        self.gate = build_activation_layer(gate_cfg)

    def forward(self, x):
        self.check_input(x)
        feats = [(x.mean((2, 3)) if s == 1 else adaptive_avg_pool2d(x, s).flatten(1))
                 for s in self.pool_sizes]
        g = self.gate(self.fc2(self.act(self.fc1(torch.cat(feats, 1)))))
        return x * g[:, :, None, None]

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, reduction={self.reduction}, '
                f'pool_sizes={self.pool_sizes}')
