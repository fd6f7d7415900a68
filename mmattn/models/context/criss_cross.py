"""Criss-cross attention.

Huang, Wang, Huang, Huang, Wei, Liu. "CCNet: Criss-Cross Attention for Semantic Segmentation",
ICCV 2019. Authors' code: https://github.com/speedinghzl/CCNet (``cc_attention/functions.py``;
its helper builds the -inf diagonal with ``.cuda()``, so it runs on GPUs only).
"""
import torch
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..utils import reduced_channels


@MODELS.register_module()
class CrissCross(BaseAttention):
    """Criss-cross attention, applied ``recurrence`` times with shared weights.

    Q, K: 1x1 convs C -> C/8 (bias); V: 1x1 conv C -> C (bias). Each pixel attends to the H
    pixels of its column and the W pixels of its row, itself excluded once (from the column),
    with **one** softmax over the H + W energies; out = gamma * (column part + row part) + x,
    gamma a learnable scalar starting at 0.

    Memory is O(H*W*(H+W)): the energies of each pixel's cross, never an HW x HW matrix. It
    runs on any device (the authors' helper is GPU-only). Layer names are the authors'.

    Args:
        in_channels: C.
        reduction: query/key width ``C // reduction`` (the authors' 8), at least 1.
        recurrence: number of passes R. The authors' README trains and evaluates their
            Cityscapes models with ``--recurrence 2`` (R = 2 in the paper; mmseg's ``CCHead``
            defaults to 2); their ``train.py`` argument default (0 or 1 by branch) is not what
            their reported runs use. The default is 2.
        init_cfg: mmengine init config.
    """

    _abbr_ = 'criss_cross'
    paper = 'CCNet: Criss-Cross Attention for Semantic Segmentation (Huang et al., ICCV 2019)'
    code = 'https://github.com/speedinghzl/CCNet'
    variants = {'r1': dict(recurrence=1)}

    def __init__(self, in_channels, reduction=8, recurrence=2, init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        if not isinstance(recurrence, int) or recurrence < 1:
            raise ValueError(f'CrissCross: recurrence must be a positive int, got {recurrence!r}')
        self.reduction = reduction
        self.recurrence = recurrence
        self.key_channels = reduced_channels(in_channels, reduction)
        self.query_conv = nn.Conv2d(in_channels, self.key_channels, 1)
        self.key_conv = nn.Conv2d(in_channels, self.key_channels, 1)
        self.value_conv = nn.Conv2d(in_channels, in_channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.reset_authors_init()

    def reset_authors_init(self):
        with torch.no_grad():
            self.gamma.zero_()

    def criss_cross(self, x):
        """One pass: (N, C, H, W) -> (N, C, H, W)."""
        h = x.shape[2]
        # one memory layout for every input format: the einsums below then reduce in the same
        # order for channels_last inputs as for contiguous ones
        q, k, v = (conv(x).contiguous()
                   for conv in (self.query_conv, self.key_conv, self.value_conv))
        # energies to the column (N, H, W, H') and to the row (N, H, W, W')
        energy_h = torch.einsum('nchw,ncgw->nhwg', q, k)
        idx = torch.arange(h, device=x.device)
        self_mask = (idx[:, None] == idx[None, :])[:, None, :]  # (H, 1, H'): g == h
        energy_h = energy_h.masked_fill_(self_mask, float('-inf'))
        energy_w = torch.einsum('nchw,nchv->nhwv', q, k)
        attn = torch.cat([energy_h, energy_w], dim=-1).softmax(dim=-1)
        out = torch.einsum('ncgw,nhwg->nchw', v, attn[..., :h])
        out = out + torch.einsum('nchv,nhwv->nchw', v, attn[..., h:])
        return self.gamma * out + x

    def forward(self, x):
        self.check_input(x)
        for _ in range(self.recurrence):
            x = self.criss_cross(x)
        return x

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, key_channels={self.key_channels}, '
                f'recurrence={self.recurrence}')
