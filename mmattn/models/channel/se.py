"""Squeeze-and-Excitation.

Hu, Shen, Sun. "Squeeze-and-Excitation Networks", CVPR 2018.
Authors' code: https://github.com/hujie-frank/SENet (``models/SE-ResNet-50.prototxt``).
"""
from mmcv.cnn import build_activation_layer
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..utils import reduced_channels


@MODELS.register_module()
class SE(BaseAttention):
    """SE block: GAP -> 1x1 conv C->C/r (bias) -> ReLU -> 1x1 conv C/r->C (bias) -> sigmoid -> x*g.

    Args:
        in_channels: C.
        reduction: r; the authors use 16. The reduced width is ``max(1, C // r)``.
        act_cfg: the activation between the two convs (ReLU in the authors' nets).
        gate_cfg: the gate's activation (sigmoid).
        init_cfg: mmengine init config.
    """

    _abbr_ = 'se'
    paper = 'Squeeze-and-Excitation Networks (Hu et al., CVPR 2018)'
    code = 'https://github.com/hujie-frank/SENet'
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    placement = dict(plugins=[dict(cfg=dict(type='mmattn.SE'), position='after_conv3')])
    channel_gates = {'channel gate': 'gate'}
    maps_caption = 'channel weights: the output of the gate (sigmoid), one per channel'

    def __init__(self, in_channels, *, reduction=16, act_cfg=dict(type='ReLU'),
                 gate_cfg=dict(type='Sigmoid'), init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        self.reduction = reduction
        rd = reduced_channels(in_channels, reduction)
        self.fc1 = nn.Conv2d(in_channels, rd, 1, bias=True)
        self.act = build_activation_layer(act_cfg)
        self.fc2 = nn.Conv2d(rd, in_channels, 1, bias=True)
        self.gate = build_activation_layer(gate_cfg)

    def forward(self, x):
        self.check_input(x)
        g = self.gate(self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * g

    def extra_repr(self):
        return f'in_channels={self.in_channels}, reduction={self.reduction}'
