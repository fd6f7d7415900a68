"""Small plugins whose effect is easy to write out, passed by class (not registered)."""
import torch
from torch import nn

from mmattn.models.base import BaseAttention


class Affine(nn.Module):
    """x * w + b per channel; remembers the in_channels it was built with."""

    _abbr_ = 'affine'

    def __init__(self, in_channels):
        super().__init__()
        self.in_channels = in_channels
        self.weight = nn.Parameter(torch.ones(in_channels))
        self.bias = nn.Parameter(torch.zeros(in_channels))

    def forward(self, x):
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class AddConst(nn.Module):
    """x + value: does not commute with Affine, so the order of plugins shows."""

    _abbr_ = 'add'

    def __init__(self, in_channels, value=1.0):
        super().__init__()
        self.in_channels = in_channels
        self.value = value

    def forward(self, x):
        return x + self.value


class ZeroGammaNorm(BaseAttention):
    """A BN whose weight the 'authors' zero outside the module (reset_authors_init)."""

    _abbr_ = 'zgn'

    def __init__(self, in_channels, init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        self.conv = nn.Conv2d(in_channels, in_channels, 1)
        self.bn = nn.BatchNorm2d(in_channels)
        self.reset_authors_init()

    def reset_authors_init(self):
        nn.init.zeros_(self.bn.weight)

    def forward(self, x):
        return x + self.bn(self.conv(x))
