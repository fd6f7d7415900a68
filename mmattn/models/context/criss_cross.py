"""Criss-cross attention.

Huang, Wang, Huang, Huang, Wei, Liu. "CCNet: Criss-Cross Attention for Semantic Segmentation",
ICCV 2019. Authors' code: https://github.com/speedinghzl/CCNet (``cc_attention/functions.py``;
its helper builds the -inf diagonal with ``.cuda()``, so it runs on GPUs only).
"""
import torch
from torch import Tensor, nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..dispatch import register_rule, select
from ..ops import cpu_only, graph_capture, observed
from ..utils import reduced_channels

# -- one criss-cross pass as batched matrix products over channels-last tensors ---------------
# PyTorch's einsums on NCHW tensors transpose the value map and the output several times per
# pass, and autograd's backward then adds gradients that arrive in different layouts, which
# the CPU does 5-7x slower than a contiguous add. Here the 1x1 convs are one matrix product
# that writes q, k, v channels-last (N, H, W, C) directly, every product over rows and columns
# reads strided views of those, and the backward returns grad_x from one product in NCHW.


def _energies(a: Tensor, b: Tensor) -> Tensor:
    """(N, H, W, H + W): each pixel's vector in ``a`` dotted with the vectors of ``b`` in its
    column (first H, itself included) and in its row (last W); ``a``, ``b`` (N, H, W, C)."""
    n, h, w, c = a.shape
    out = a.new_empty(n, h, w, h + w)
    torch.bmm(a.reshape(n * h, w, c), b.reshape(n * h, w, c).transpose(1, 2),
              out=out[..., h:].view(n * h, w, w))
    for i in range(n):  # columns: batched over the W columns of one image (strided views)
        torch.bmm(a[i].transpose(0, 1), b[i].permute(1, 2, 0),
                  out=out[i, :, :, :h].transpose(0, 1))
    return out


def _gather(p: Tensor, b: Tensor, out: Tensor) -> Tensor:
    """out[n, h, w] = sum_g p[n, h, w, g] b[n, g, w] + sum_v p[n, h, w, H + v] b[n, h, v]."""
    n, h, w, c = b.shape
    for i in range(n):
        torch.bmm(p[i, :, :, :h].transpose(0, 1), b[i].transpose(0, 1),
                  out=out[i].transpose(0, 1))
    out.view(n * h, w, c).baddbmm_(p[..., h:].view(n * h, w, w), b.reshape(n * h, w, c))
    return out


def _scatter(p: Tensor, b: Tensor, out: Tensor) -> Tensor:
    """The transpose of :func:`_gather`: out[n, g, w] = sum_h p[n, h, w, g] b[n, h, w] plus
    out[n, h, v] = sum_w p[n, h, w, H + v] b[n, h, w]."""
    n, h, w, c = b.shape
    for i in range(n):
        torch.bmm(p[i, :, :, :h].permute(1, 2, 0), b[i].transpose(0, 1),
                  out=out[i].transpose(0, 1))
    out.view(n * h, w, c).baddbmm_(p[..., h:].view(n * h, w, w).transpose(1, 2),
                                   b.reshape(n * h, w, c))
    return out


def _split(qkv: Tensor, key_channels: int):
    return qkv[..., :key_channels], qkv[..., key_channels:2 * key_channels], \
        qkv[..., 2 * key_channels:]


def _cc_forward(x, weight, bias, gamma, key_channels):
    n, c, h, w = x.shape
    c2 = weight.shape[0]
    qkv = torch.baddbmm(bias.expand(n, h * w, c2), x.reshape(n, c, h * w).transpose(1, 2),
                        weight.t().expand(n, c, c2)).view(n, h, w, c2)
    q, k, v = _split(qkv, key_channels)
    energy = _energies(q, k)
    energy[..., :h].diagonal(dim1=1, dim2=3).fill_(float('-inf'))  # the pixel, once
    attn = torch.softmax(energy, dim=-1)
    out = _gather(attn, v, x.new_empty(n, h, w, c))
    return torch.addcmul(x, gamma, out.permute(0, 3, 1, 2).contiguous()), qkv, attn


class _CrissCrossFunction(torch.autograd.Function):
    """``x + gamma * criss_cross_attention(conv_q(x), conv_k(x), conv_v(x))``, the three 1x1
    convs given as one (Cq + Ck + C, C) weight and its bias."""

    @staticmethod
    def forward(ctx, x, weight, bias, gamma, key_channels):
        x = x.contiguous()
        y, qkv, attn = _cc_forward(x, weight, bias, gamma, key_channels)
        ctx.key_channels = key_channels
        ctx.save_for_backward(x, weight, gamma, qkv, attn)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy):
        x, weight, gamma, qkv, attn = ctx.saved_tensors
        n, c, h, w = x.shape
        c2 = weight.shape[0]
        q, k, v = _split(qkv, ctx.key_channels)
        gy = gy.contiguous()
        gy_l = gy.permute(0, 2, 3, 1).contiguous()
        g_attn = _energies(gy_l, v)
        g_qkv = torch.empty_like(qkv)
        gq, gk, gv = _split(g_qkv, ctx.key_channels)
        _scatter(attn, gy_l, gv)  # A^T gy; times gamma below
        # <gy, out> = <gy, A v> = <A^T gy, v>: gamma's gradient without the saved output
        g_gamma = (gv * v).sum().reshape(gamma.shape)
        g_energy = attn * (g_attn - (g_attn * attn).sum(dim=-1, keepdim=True))
        g_energy.mul_(gamma)  # masked entries: attn = 0, so 0 here
        _gather(g_energy, k, gq)
        _scatter(g_energy, q, gk)
        gv.mul_(gamma)
        g_flat = g_qkv.view(n, h * w, c2)
        x_flat = x.view(n, c, h * w)
        g_weight = torch.bmm(g_flat.transpose(1, 2), x_flat.transpose(1, 2)).sum(0)
        g_bias = g_flat.sum((0, 1))
        gx = torch.baddbmm(gy.view(n, c, h * w), weight.t().expand(n, c, c2),
                           g_flat.transpose(1, 2))
        return gx.view(n, c, h, w), g_weight, g_bias, g_gamma, None


@MODELS.register_module()
class CrissCross(BaseAttention):
    """Criss-cross attention, applied ``recurrence`` times with shared weights.

    Q, K: 1x1 convs C -> C/8 (bias); V: 1x1 conv C -> C (bias). Each pixel attends to the H
    pixels of its column and the W pixels of its row, itself excluded once (from the column),
    with **one** softmax over the H + W energies; out = gamma * (column part + row part) + x,
    gamma a learnable scalar starting at 0.

    Memory is O(H*W*(H+W)): the energies of each pixel's cross, never an HW x HW matrix. It
    runs on any device (the authors' helper is GPU-only). Layer names are the authors'.

    On the CPU each pass runs as one autograd Function (``fused=True``): the three 1x1 convs
    as one matrix product writing channels-last q, k, v, the row and column products on
    strided views of those, and a hand-written backward (tested against autograd of the
    formula in float64). For forward + backward it is 1.4x faster than the formula in
    PyTorch einsums at (8, 256, 56, 56) and 2.2x faster than mmcv's ``CrissCrossAttention``
    at (1, 512, 64, 128), with the same results to rounding (README, speed tables). The
    plain ops (:meth:`plain_criss_cross`: the row and column energies by batched products,
    as ``tools/benchmarks/plain_modules.py`` and the authors' pure-PyTorch form compute them)
    run instead on other devices (rule ``'criss_cross'``: on an NVIDIA H200 the einsum form
    that ran there was 1.21x slower than those, issue #13), while a graph is captured
    (tracing, ONNX export, an outer ``torch.compile``), under autocast, when a forward hook is
    registered on the convs (the attention-map tool taps them), and with ``fused=False``;
    double backward needs ``fused=False``. On the CPU those batched products are as fast as the
    einsum form they replaced, or faster (training step, ``fused=False``, R = 2, best of 14-30
    alternated runs, einsum/bmm time): 1 thread 1.06 (fp32) and 1.05 (bf16 autocast) at
    (2, 64, 64, 64), 1.00 and 1.02 at (1, 512, 64, 128); 2 threads 1.07 and 1.06, 1.07 and 1.01
    (rule ``'criss_cross'``'s reason has the milliseconds).

    Args:
        in_channels: C.
        reduction: query/key width ``C // reduction`` (the authors' 8), at least 1.
        recurrence: number of passes R. The authors' README trains and evaluates their
            Cityscapes models with ``--recurrence 2`` (R = 2 in the paper; mmseg's ``CCHead``
            defaults to 2); their ``train.py`` argument default (0 or 1 by branch) is not what
            their reported runs use. The default is 2.
        fused: run each pass as the fused autograd Function above where it applies.
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

    def __init__(self, in_channels, reduction=8, recurrence=2, fused=True, init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        if not isinstance(recurrence, int) or recurrence < 1:
            raise ValueError(f'CrissCross: recurrence must be a positive int, got {recurrence!r}')
        self.reduction = reduction
        self.recurrence = recurrence
        self.fused = fused
        self.key_channels = reduced_channels(in_channels, reduction)
        self.query_conv = nn.Conv2d(in_channels, self.key_channels, 1)
        self.key_conv = nn.Conv2d(in_channels, self.key_channels, 1)
        self.value_conv = nn.Conv2d(in_channels, in_channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self._self_masks = {}  # (H, device, dtype) -> the (H, H) self mask; not state
        self.reset_authors_init()

    def reset_authors_init(self):
        with torch.no_grad():
            self.gamma.zero_()

    def _convs(self):
        return self.query_conv, self.key_conv, self.value_conv

    def _fused_applies(self, x):
        return (self.fused and x.device.type == 'cpu' and x.dtype == self.value_conv.weight.dtype
                and not torch.is_autocast_enabled('cpu') and not graph_capture()
                and all(type(conv) is nn.Conv2d for conv in self._convs())
                and not observed(*self._convs()))

    def criss_cross(self, x):
        """One pass: (N, C, H, W) -> (N, C, H, W)."""
        if self._fused_applies(x) and select('criss_cross', x) == 'fused':
            weight = torch.cat([conv.weight.flatten(1) for conv in self._convs()])
            bias = torch.cat([conv.bias for conv in self._convs()])
            return _CrissCrossFunction.apply(x, weight, bias, self.gamma, self.key_channels)
        return self.plain_criss_cross(x)

    def _self_mask(self, h: int, like: Tensor) -> Tensor:
        """(H, H): -inf on the diagonal, 0 elsewhere, added to the column energies so that a
        pixel's energy to itself counts once (in the row). Plain subtracts an inf diagonal
        (``diag_embed``), which does not export to ONNX, nor does a boolean eye run in
        onnxruntime; a mask built from ``arange`` does both. It is built once per size,
        device and dtype (added, it has no backward: the masked_fill it replaced cost a
        full-size pass forward and one backward, two more kernels a step than plain), and
        anew while a graph is captured, so that the graph holds its ops."""
        key = (h, like.device, like.dtype)
        # cached for plain tensors only: a fake tensor's mask (make_fx, FakeTensorMode) holds
        # no data, and a cached real one cannot be added to fake energies
        cached = not graph_capture() and type(like) is Tensor
        masks = self.__dict__.get('_self_masks')
        if masks is None:  # a module pickled before the cache existed
            masks = self._self_masks = {}
        mask = masks.get(key) if cached else None
        if mask is None:
            idx = torch.arange(h, device=like.device)
            mask = torch.zeros(h, h, device=like.device, dtype=like.dtype).masked_fill_(
                idx[:, None] == idx[None, :], float('-inf'))
            if cached:
                masks[key] = mask
        return mask

    def plain_criss_cross(self, x):
        """One pass in autograd's ops: per column an (H x H) and per row a (W x W) batched
        energy product, the column's own pixel at -inf, one softmax over the H + W energies,
        and the two weighted sums of the values as batched products."""
        n, c, h, w = x.shape
        # one memory layout for every input format: the products below then reduce in the
        # same order for channels_last inputs as for contiguous ones
        q, k, v = (conv(x).contiguous() for conv in self._convs())
        ck = q.shape[1]
        q_h = q.permute(0, 3, 2, 1).reshape(n * w, h, ck)
        k_h = k.permute(0, 3, 1, 2).reshape(n * w, ck, h)
        energy_h = torch.bmm(q_h, k_h)  # (N*W, H, H'): pixel (h, w) to (h', w)
        energy_h = energy_h + self._self_mask(h, energy_h)  # the pixel itself at -inf, once
        energy_h = energy_h.view(n, w, h, h).permute(0, 2, 1, 3)  # (N, H, W, H')
        q_w = q.permute(0, 2, 3, 1).reshape(n * h, w, ck)
        k_w = k.permute(0, 2, 1, 3).reshape(n * h, ck, w)
        energy_w = torch.bmm(q_w, k_w).view(n, h, w, w)  # (N, H, W, W')
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
                f'recurrence={self.recurrence}, fused={self.fused}')


register_rule(
    'criss_cross', ('plain', 'fused'), cpu_only('fused'),
    reason='fused: one autograd Function per pass (channels-last q, k, v from one product, '
    'strided row and column products, hand-written backward). CPU (1 thread, float32, '
    'training step at (8, 256, 56, 56), README): 1.36x faster than plain, 40% less peak '
    'memory. NVIDIA H200 (issue #13): the einsum form then used off the CPU was 1.21x plain '
    "in fp32, 1.20x in bf16; plain's batched products (plain_criss_cross) run there now. "
    'They also run where fused does not apply on the CPU (autocast, hooks on the convs, '
    'fused=False), timed there against that einsum form (training step, fused=False, R = 2, '
    'best of 14-30 alternated runs, bmm vs einsum): 1 thread, (2, 64, 64, 64): fp32 62 vs 66 '
    'ms, bf16 autocast 50 vs 53 ms; (1, 512, 64, 128): fp32 914 vs 911 ms, bf16 656 vs 666 ms. '
    '2 threads, (2, 64, 64, 64): fp32 39 vs 42 ms, bf16 35 vs 37 ms; (1, 512, 64, 128): fp32 '
    '555 vs 593 ms, bf16 337 vs 339 ms. einsum is nowhere faster by more than noise, so the '
    'CPU keeps the batched products too.')
