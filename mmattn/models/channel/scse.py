"""Channel, spatial and concurrent spatial-and-channel squeeze & excitation (cSE, sSE, scSE).

Roy, Navab, Wachinger. "Concurrent Spatial and Channel 'Squeeze & Excitation' in Fully
Convolutional Networks", MICCAI 2018.
Authors' code: https://github.com/ai-med/squeeze_and_excitation
(``squeeze_and_excitation/squeeze_and_excitation.py``: ``ChannelSELayer``, ``SpatialSELayer``,
``ChannelSpatialSELayer``).
"""
import torch
from mmcv.cnn import build_activation_layer
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..utils import reduced_channels


@MODELS.register_module()
class CSE(BaseAttention):
    """cSE: GAP -> Linear C->C/r (bias) -> ReLU -> Linear C/r->C (bias) -> sigmoid -> x * g.

    SE with the authors' reduction of 2 and linear layers (named ``fc1``/``fc2`` as theirs).

    Args:
        in_channels: C.
        reduction: r (2 in the authors' code). The reduced width is ``max(1, C // r)``.
        act_cfg: the MLP's activation (ReLU).
        gate_cfg: the gate's activation (sigmoid).
        init_cfg: mmengine init config.
    """

    _abbr_ = 'cse'
    paper = ("Concurrent Spatial and Channel 'Squeeze & Excitation' in Fully Convolutional "
             'Networks (Roy et al., MICCAI 2018)')
    code = 'https://github.com/ai-med/squeeze_and_excitation'
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    placement = dict(plugins=[
        dict(cfg=dict(type='mmattn.CSE', reduction=2), stages=(True, True, True, True),
             position='after_conv3')])
    channel_gates = {'channel gate': 'gate'}
    maps_caption = 'channel weights: the output of the gate (sigmoid), one per channel'

    def __init__(self, in_channels, *, reduction=2, act_cfg=dict(type='ReLU'),
                 gate_cfg=dict(type='Sigmoid'), init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        self.reduction = reduction
        rd = reduced_channels(in_channels, reduction)
        self.fc1 = nn.Linear(in_channels, rd, bias=True)
        self.act = build_activation_layer(act_cfg)
        self.fc2 = nn.Linear(rd, in_channels, bias=True)
        self.gate = build_activation_layer(gate_cfg)

    def forward(self, x):
        self.check_input(x)
        g = self.gate(self.fc2(self.act(self.fc1(x.mean((2, 3))))))
        return x * g[:, :, None, None]

    def extra_repr(self):
        return f'in_channels={self.in_channels}, reduction={self.reduction}'


@MODELS.register_module()
class SSE(BaseAttention):
    """sSE: 1x1 conv C->1 (bias) -> sigmoid -> x * s, one gate per position.

    Args:
        in_channels: C.
        gate_cfg: the gate's activation (sigmoid).
        init_cfg: mmengine init config.
    """

    _abbr_ = 'sse'
    paper = CSE.paper
    code = CSE.code
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    placement = dict(plugins=[
        dict(cfg=dict(type='mmattn.SSE'), stages=(True, True, True, True),
             position='after_conv3')])
    spatial_gates = {'spatial gate': 'gate'}
    maps_caption = 'spatial gate (sigmoid of a 1x1 conv)'

    def __init__(self, in_channels, *, gate_cfg=dict(type='Sigmoid'), init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        self.conv = nn.Conv2d(in_channels, 1, 1, bias=True)
        self.gate = build_activation_layer(gate_cfg)

    def forward(self, x):
        self.check_input(x)
        return x * self.gate(self.conv(x))


@MODELS.register_module()
class SCSE(BaseAttention):
    """scSE: cSE and sSE on the same input, fused by ``max`` (the authors' code) or ``sum``.

    The authors' ``ChannelSpatialSELayer`` returns ``torch.max(cSE(x), sSE(x))``; the paper's
    text adds the two. ``fusion='max'`` (default) follows the code, ``fusion='sum'`` the paper.

    Args:
        in_channels: C.
        reduction: cSE's r (2).
        fusion: ``'max'`` or ``'sum'``.
        act_cfg: cSE's activation (ReLU).
        gate_cfg: both gates' activation (sigmoid).
        init_cfg: mmengine init config.
    """

    _abbr_ = 'scse'
    paper = CSE.paper
    code = CSE.code
    variants = {'sum': dict(fusion='sum')}
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    placement = dict(plugins=[
        dict(cfg=dict(type='mmattn.SCSE', reduction=2, fusion='max'),
             stages=(True, True, True, True), position='after_conv3')])
    spatial_gates = {'sSE spatial gate': 'sSE.gate'}
    channel_gates = {'cSE channel gate': 'cSE.gate'}
    maps_caption = "sSE's spatial gate and cSE's channel gate (fused by max or sum)"

    def __init__(self, in_channels, *, reduction=2, fusion='max', act_cfg=dict(type='ReLU'),
                 gate_cfg=dict(type='Sigmoid'), init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        if fusion not in ('max', 'sum'):
            raise ValueError(f"SCSE: fusion must be 'max' or 'sum', got {fusion!r}")
        self.fusion = fusion
        # named cSE/sSE as the authors' submodules, so their state dicts map onto these
        self.cSE = CSE(in_channels, reduction=reduction, act_cfg=act_cfg, gate_cfg=gate_cfg)
        self.sSE = SSE(in_channels, gate_cfg=gate_cfg)

    def forward(self, x):
        self.check_input(x)
        c, s = self.cSE(x), self.sSE(x)
        return torch.max(c, s) if self.fusion == 'max' else c + s

    def extra_repr(self):
        return f'in_channels={self.in_channels}, fusion={self.fusion!r}'
