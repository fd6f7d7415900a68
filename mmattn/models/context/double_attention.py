"""Double attention (A^2) block.

Chen, Kalantidis, Li, Yan, Feng. "A^2-Nets: Double Attention Networks", NeurIPS 2018.
No authors' code was released. One well-known re-implementation normalises over the batch axis
(``softmax`` without a ``dim`` on a (N, c, HW) tensor); another normalises V over positions
instead of over its c_n descriptors. Neither is the paper's formula; this module follows the
paper.
"""
from typing import Optional

import torch
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..utils import reduced_channels


@MODELS.register_module()
class DoubleAttention(BaseAttention):
    """A^2 block: gather global descriptors, distribute them back to every position.

    A, B, V = 1x1 convs (bias) C -> c_m, c_n, c_n. Gather: G = A softmax(B)^T with B's softmax
    over the H*W positions of each of its c_n maps (G is c_m x c_n). Distribute:
    Z = G softmax(V), V's softmax over its c_n channels at each position. Out = x + conv(Z),
    conv 1x1 c_m -> C (bias): the paper's residual block. Memory is linear in H*W: the largest
    intermediate is c_m x H*W.

    Args:
        in_channels: C.
        c_m: width of the gathered descriptors; default ``C // reduction`` (at least 1).
        c_n: number of descriptors; default ``C // reduction`` (at least 1).
        reduction: the default ratio for c_m and c_n. The paper fixes no ratio for every
            block; 4 is this library's choice.
        init_cfg: mmengine init config.
    """

    _abbr_ = 'double_attention'
    paper = 'A^2-Nets: Double Attention Networks (Chen et al., NeurIPS 2018)'
    code = ''
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    placement = dict(plugins=[
        dict(cfg=dict(type='mmattn.DoubleAttention', c_m=512, c_n=512),
             stages=(False, False, False, True), blocks='last', position='after_conv3')])
    map_taps = ('conv_b', 'conv_v')
    maps_caption = ("the query pixel's weights over positions, sum_n softmax_n(V)[n, p] "
                    'softmax_j(B)[n, j]; the gather maps averaged')

    def attention_maps(self, inputs, taps, query):
        from mmattn.visualization import AttentionMaps, first_image
        b = first_image(taps['conv_b'][-1].output).double()  # (c_n, H, W)
        v = first_image(taps['conv_v'][-1].output).double()
        size = b.shape[1:]
        gather = b.flatten(1).softmax(dim=1)  # each descriptor's distribution over positions
        qy, qx = query.index(*size)
        dist = v[:, qy, qx].softmax(0)  # the query pixel's weights over the c_n descriptors
        return AttentionMaps(
            query={'attention of the query pixel': (dist @ gather).reshape(size)},
            spatial={f'gather maps, mean over {self.c_n}': gather.mean(0).reshape(size)})

    def __init__(self, in_channels, *, c_m: Optional[int] = None, c_n: Optional[int] = None,
                 reduction=4, init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        self.c_m = int(c_m) if c_m is not None else reduced_channels(in_channels, reduction)
        self.c_n = int(c_n) if c_n is not None else reduced_channels(in_channels, reduction)
        if self.c_m < 1 or self.c_n < 1:
            raise ValueError(f'DoubleAttention: c_m and c_n must be positive, got '
                             f'{self.c_m} and {self.c_n}')
        self.conv_a = nn.Conv2d(in_channels, self.c_m, 1)
        self.conv_b = nn.Conv2d(in_channels, self.c_n, 1)
        self.conv_v = nn.Conv2d(in_channels, self.c_n, 1)
        self.conv_out = nn.Conv2d(self.c_m, in_channels, 1)

    def forward(self, x):
        self.check_input(x)
        n, _, h, w = x.shape
        a = self.conv_a(x).flatten(2)  # (N, c_m, HW)
        attn_maps = self.conv_b(x).flatten(2).softmax(dim=2)  # over positions
        attn_vectors = self.conv_v(x).flatten(2).softmax(dim=1)  # over the c_n descriptors
        descriptors = torch.matmul(a, attn_maps.transpose(1, 2))  # (N, c_m, c_n)
        z = torch.matmul(descriptors, attn_vectors)  # (N, c_m, HW)
        return x + self.conv_out(z.reshape(n, self.c_m, h, w))

    def extra_repr(self):
        return f'in_channels={self.in_channels}, c_m={self.c_m}, c_n={self.c_n}'
