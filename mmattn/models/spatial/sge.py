"""Spatial Group-wise Enhance.

Li, Hu, Yang. "Spatial Group-wise Enhance: Improving Semantic Feature Learning in Convolutional
Networks", arXiv:1905.09646, 2019.
Authors' code: https://github.com/implus/PytorchInsight
(``classification/models/imagenet/resnet_sge.py::SpatialGroupEnhance``).
"""
import torch
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ._common import largest_divisor


@MODELS.register_module()
class SGE(BaseAttention):
    """SGE: per channel group, a spatial gate from the group's similarity to its mean vector.

    For each of G groups: ``xn = sum over the group's channels of x * GAP(x)``; ``xn`` is
    normalised over the H x W positions, ``t = (xn - mean) / (std + 1e-5)`` with the unbiased
    std and the 1e-5 added *after* the square root as in the authors' code; then
    ``t * weight + bias`` (one scalar pair per group) -> sigmoid -> rescales the group.

    ``weight`` starts at 0 and ``bias`` at 1 (the authors' constructor), so the module starts
    as a constant gate sigmoid(1).

    Channel counts not divisible by ``groups``: the module uses the largest divisor of C not
    above ``groups`` (``self.groups``; the requested value is ``self.requested_groups``), e.g.
    48 channels run with 48 groups, 96 with 48. The authors' widths (multiples of 64) are
    unaffected.

    A map with a single position (1x1) has no spread to normalise: its normalised value is
    defined as 0 (the centred value is 0 there; the authors' unbiased std would divide 0 by
    NaN), so the gate is sigmoid(bias).

    Args:
        in_channels: C.
        groups: G; 64 in the authors' ResNets.
        eps: added to the std; 1e-5.
        init_cfg: mmengine init config.
    """

    _abbr_ = 'sge'
    paper = ('Spatial Group-wise Enhance: Improving Semantic Feature Learning in '
             'Convolutional Networks (Li et al., 2019)')
    code = 'https://github.com/implus/PytorchInsight'
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    placement = dict(plugins=[dict(cfg=dict(type='mmattn.SGE'), position='after_conv3')])
    maps_caption = ('the group gates (sigmoid of the normalised similarity to the group '
                    'mean), averaged over groups')

    def attention_maps(self, inputs, taps, query):
        from mmattn.visualization import AttentionMaps, first_image
        # no submodule to tap: the gate is recomputed from the input with the parameters
        x = inputs[0]
        n, c, h, w = x.shape
        g = self.groups
        xg = x.reshape(n * g, c // g, h, w)
        t = (xg * xg.mean(dim=(2, 3), keepdim=True)).sum(dim=1).reshape(n * g, h * w)
        if h * w > 1:
            t = t - t.mean(dim=1, keepdim=True)
            t = t / (t.std(dim=1, keepdim=True) + self.eps)
        else:
            t = torch.zeros_like(t)
        gate = torch.sigmoid(t.reshape(n, g, h, w) * self.weight + self.bias)
        return AttentionMaps(spatial={f'gate, mean over {g} groups': first_image(gate).mean(0)})

    def __init__(self, in_channels, *, groups=64, eps=1e-5, init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        if groups < 1:
            raise ValueError(f'SGE: groups must be positive, got {groups}')
        self.requested_groups = groups
        self.groups = largest_divisor(in_channels, groups)
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(1, self.groups, 1, 1))
        self.bias = nn.Parameter(torch.ones(1, self.groups, 1, 1))
        self.reset_authors_init()

    def reset_authors_init(self):
        # the authors' init lives in their constructor; mmdet's ResNet init_cfg (Kaiming for
        # convs, constants for norms) does not touch these bare parameters, but a user init
        # might: bring them back to the authors' starting point
        nn.init.zeros_(self.weight)
        nn.init.ones_(self.bias)

    def forward(self, x):
        self.check_input(x)
        n, c, h, w = x.shape
        g = self.groups
        xg = x.reshape(n * g, c // g, h, w)
        xn = (xg * xg.mean(dim=(2, 3), keepdim=True)).sum(dim=1)
        t = xn.reshape(n * g, h * w)
        if h * w > 1:
            t = t - t.mean(dim=1, keepdim=True)
            # torch.std's backward is 0 where the std is 0 (a constant map, e.g. a group of
            # dead ReLUs), where a hand-written sqrt(var) would give NaN gradients
            std = t.std(dim=1, keepdim=True) + self.eps
            t = t / std
        else:
            t = torch.zeros_like(t)
        t = t.reshape(n, g, h, w) * self.weight + self.bias
        gate = torch.sigmoid(t).reshape(n * g, 1, h, w)
        return (xg * gate).reshape(n, c, h, w)

    def extra_repr(self):
        return f'in_channels={self.in_channels}, groups={self.groups}'
