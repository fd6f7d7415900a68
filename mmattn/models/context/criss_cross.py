"""Criss-cross attention.

Huang, Wang, Huang, Huang, Wei, Liu. "CCNet: Criss-Cross Attention for Semantic Segmentation",
ICCV 2019. Authors' code: https://github.com/speedinghzl/CCNet (``cc_attention/functions.py``;
its helper builds the -inf diagonal with ``.cuda()``, so it runs on GPUs only).
"""
import torch
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..layers import cpu_kernels, use_fast_path
from ..utils import has_forward_hooks, reduced_channels


def self_mask(h: int, like: torch.Tensor) -> torch.Tensor:
    """(H, H): -inf on the diagonal, 0 elsewhere, added to the column energies so that a
    pixel's energy to itself counts once (in the row). An inf diagonal built with ``diag`` or
    ``diag_embed`` does not export to ONNX, nor does a boolean eye run in onnxruntime; a mask
    built from ``arange`` does both."""
    idx = torch.arange(h, device=like.device)
    return torch.zeros(h, h, device=like.device, dtype=like.dtype).masked_fill_(
        idx[:, None] == idx[None, :], float('-inf'))


@MODELS.register_module()
class CrissCross(BaseAttention):
    """Criss-cross attention, applied ``recurrence`` times with shared weights.

    Q, K: 1x1 convs C -> C/8 (bias); V: 1x1 conv C -> C (bias). Each pixel attends to the H
    pixels of its column and the W pixels of its row, itself excluded once (from the column),
    with **one** softmax over the H + W energies; out = gamma * (column part + row part) + x,
    gamma a learnable scalar starting at 0.

    Memory is O(H*W*(H+W)): the energies of each pixel's cross, never an HW x HW matrix. It
    runs on any device (the authors' helper is GPU-only). Layer names are the authors'.

    On the CPU each pass runs as one autograd Function
    (:func:`~mmattn.models.layers.cpu_kernels.criss_cross`); double backward needs the fast
    paths off (``mmattn.models.layers.fast_paths(False)``).

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
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    placement = dict(plugins=[
        dict(cfg=dict(type='mmattn.CrissCross', reduction=8, recurrence=2),
             stages=(False, False, False, True), blocks='last', position='after_block')])
    map_taps = ('query_conv', 'key_conv')
    maps_caption = ("the query pixel's weights on its row and column in each pass, and the "
                    "product of the passes' attention (where its R passes gather from)")

    def attention_maps(self, inputs, taps, query):
        from mmattn.visualization import AttentionMaps
        qs = [t.output[0].double().cpu() for t in taps.get('query_conv', [])]
        ks = [t.output[0].double().cpu() for t in taps.get('key_conv', [])]
        if not qs:
            return 'its query conv did not run'
        qy, qx = query.index(*qs[0].shape[1:])
        maps = AttentionMaps()
        for r, (q, k) in enumerate(zip(qs, ks)):
            maps.query[f'pass {r + 1}: row and column'] = self._cross_row(q, k, qy, qx)
        if len(qs) > 1:
            # the last pass gathers from the query's cross; each of those pixels gathered from
            # its own cross in the pass before: multiply the passes' (sparse) attention
            # backwards
            w = self._cross_row(qs[-1], ks[-1], qy, qx)
            for q, k in zip(reversed(qs[:-1]), reversed(ks[:-1])):
                col, row = self._cross_weights(q, k)
                w = torch.einsum('hw,hwg->gw', w, col) + torch.einsum('hw,hwv->hv', w, row)
            maps.query[f'passes 1-{len(qs)} combined'] = w
        return maps

    @staticmethod
    def _cross_row(q, k, qy, qx):
        """(H, W) attention of pixel (qy, qx) in one pass, from q, k of (C', H, W): one
        softmax over its column (itself excluded) and its row."""
        h = q.shape[1]
        qv = q[:, qy, qx]
        e_col = qv @ k[:, :, qx]  # (H,)
        e_col[qy] = float('-inf')
        e_row = qv @ k[:, qy, :]  # (W,)
        a = torch.cat([e_col, e_row]).softmax(0)
        out = torch.zeros(q.shape[1:], dtype=a.dtype)
        out[:, qx] += a[:h]
        out[qy, :] += a[h:]
        return out

    @staticmethod
    def _cross_weights(q, k):
        """Every pixel's weights in one pass, (H, W, H) over its column and (H, W, W) over its
        row: O(HW (H + W)) energies, never an HW x HW matrix."""
        h = q.shape[1]
        e_h = torch.einsum('chw,cgw->hwg', q, k)
        idx = torch.arange(h)
        e_h = e_h.masked_fill((idx[:, None] == idx[None, :])[:, None, :], float('-inf'))
        e_w = torch.einsum('chw,chv->hwv', q, k)
        a = torch.cat([e_h, e_w], dim=-1).softmax(-1)
        return a[..., :h], a[..., h:]

    def __init__(self, in_channels, *, reduction=8, recurrence=2, init_cfg=None):
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
        convs = (self.query_conv, self.key_conv, self.value_conv)
        # the one-Function pass reads the convs' weights (hooks on them would not run, another
        # conv type would not be honoured) and computes in x's dtype (autocast would not apply)
        if (use_fast_path(x) and not has_forward_hooks(*convs)
                and all(type(conv) is nn.Conv2d for conv in convs)
                and not torch.is_autocast_enabled('cpu')
                and x.dtype == self.value_conv.weight.dtype):
            return cpu_kernels.criss_cross(x, convs, self.gamma, self.key_channels)
        n, c, h, w = x.shape
        # one memory layout for every input format: the products below then reduce in the
        # same order for channels_last inputs as for contiguous ones
        q, k, v = (conv(x).contiguous() for conv in convs)
        ck = q.shape[1]
        # per column an (H x H) and per row a (W x W) batched energy product
        q_h = q.permute(0, 3, 2, 1).reshape(n * w, h, ck)
        k_h = k.permute(0, 3, 1, 2).reshape(n * w, ck, h)
        energy_h = torch.bmm(q_h, k_h)  # (N*W, H, H'): pixel (h, w) to (h', w)
        energy_h = energy_h + self_mask(h, energy_h)  # the pixel itself at -inf, once
        energy_h = energy_h.view(n, w, h, h).permute(0, 2, 1, 3)  # (N, H, W, H')
        q_w = q.permute(0, 2, 3, 1).reshape(n * h, w, ck)
        k_w = k.permute(0, 2, 1, 3).reshape(n * h, ck, w)
        energy_w = torch.bmm(q_w, k_w).view(n, h, w, w)  # (N, H, W, W')
        # one softmax over the H + W energies
        attn = torch.cat([energy_h, energy_w], dim=3).softmax(dim=3)
        a_h = attn[..., :h].permute(0, 2, 1, 3).reshape(n * w, h, h)
        a_w = attn[..., h:].reshape(n * h, w, w)
        v_h = v.permute(0, 3, 1, 2).reshape(n * w, c, h)
        v_w = v.permute(0, 2, 1, 3).reshape(n * h, c, w)
        out_h = torch.bmm(v_h, a_h.permute(0, 2, 1)).view(n, w, c, h).permute(0, 2, 3, 1)
        out_w = torch.bmm(v_w, a_w.permute(0, 2, 1)).view(n, h, c, w).permute(0, 2, 1, 3)
        return self.gamma * (out_h + out_w) + x

    def forward(self, x):
        self.check_input(x)
        for _ in range(self.recurrence):
            x = self.criss_cross(x)
        return x

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, key_channels={self.key_channels}, '
                f'recurrence={self.recurrence}')
