"""Coordinate attention.

Hou, Zhou, Feng. "Coordinate Attention for Efficient Mobile Network Design", CVPR 2021.
Authors' code: https://github.com/Andrew-Qibin/CoordAttention (``coordatt.py::CoordAtt``; the
repository now lives at houqb/CoordAttention).
"""
import torch
from mmcv.cnn import build_activation_layer
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..utils import norm_forward, reduced_channels
from ._common import build_norm


@MODELS.register_module()
class CoordAttention(BaseAttention):
    """Coordinate attention: two direction-aware gates, one along H and one along W.

    Average-pool along W -> (N, C, H, 1) and along H -> (N, C, W, 1); concatenate along the
    spatial axis -> 1x1 conv C->mip (bias) -> BN -> h_swish -> split back -> 1x1 conv mip->C
    (bias) on each part -> sigmoid -> ``out = x * a_w * a_h``.

    Args:
        in_channels: C.
        reduction: 32 in the authors' code; ``mip = max(8, C // reduction)``.
        min_channels: the smallest mip, 8 in the authors' code.
        norm_cfg: the norm after the shared conv (BN).
        act_cfg: the activation after it (h_swish: ``x * relu6(x + 3) / 6``).
        init_cfg: mmengine init config.
    """

    _abbr_ = 'coordatt'
    paper = 'Coordinate Attention for Efficient Mobile Network Design (Hou et al., CVPR 2021)'
    code = 'https://github.com/Andrew-Qibin/CoordAttention'
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    placement = dict(plugins=[
        dict(cfg=dict(type='mmattn.CoordAttention', reduction=32),
             stages=(True, True, True, True), position='after_conv3')])
    map_taps = ('conv_h', 'conv_w')
    maps_caption = 'the product of the H and W gates, averaged over channels'

    def attention_maps(self, inputs, taps, query):
        from mmattn.visualization import AttentionMaps, first_image
        a_h = torch.sigmoid(first_image(taps['conv_h'][-1].output))  # (C, H, 1)
        a_w = torch.sigmoid(first_image(taps['conv_w'][-1].output))  # (C, 1, W) after permute
        a_w = a_w.reshape(a_w.shape[0], 1, -1)
        return AttentionMaps(spatial={'a_h * a_w, mean over channels': (a_h * a_w).mean(0)})

    def __init__(self, in_channels, *, reduction=32, min_channels=8, norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='HSwish'), init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        self.reduction = reduction
        self.mip = reduced_channels(in_channels, reduction, min_channels=min_channels)
        self.conv1 = nn.Conv2d(in_channels, self.mip, 1, bias=True)
        self.bn1 = build_norm(norm_cfg, self.mip)
        self.act = build_activation_layer(act_cfg)
        self.conv_h = nn.Conv2d(self.mip, in_channels, 1, bias=True)
        self.conv_w = nn.Conv2d(self.mip, in_channels, 1, bias=True)

    def forward(self, x):
        self.check_input(x)
        h, w = x.shape[2], x.shape[3]
        x_h = x.mean(dim=3, keepdim=True)                       # (N, C, H, 1)
        x_w = x.mean(dim=2, keepdim=True).permute(0, 1, 3, 2)   # (N, C, W, 1)
        y = self.act(norm_forward(self.bn1, self.conv1(torch.cat([x_h, x_w], dim=2))))
        y_h, y_w = torch.split(y, [h, w], dim=2)
        a_h = torch.sigmoid(self.conv_h(y_h))                       # (N, C, H, 1)
        a_w = torch.sigmoid(self.conv_w(y_w.permute(0, 1, 3, 2)))   # (N, C, 1, W)
        return x * a_w * a_h

    def extra_repr(self):
        return f'in_channels={self.in_channels}, reduction={self.reduction}, mip={self.mip}'
