"""What every attention module of mmattn looks at, read from a forward pass through hooks.

One table, :data:`EXTRACTORS`, says for each registered attention class how its maps are read:
which of its submodules to tap (their outputs are recorded by forward hooks while the module
runs) and a function that turns the module's input and those recorded outputs into pictures'
worth of numbers. The modules themselves are not changed. Classes with nothing to draw are in
:data:`CANNOT_DRAW` with the reason; :func:`uncovered_classes` lists any registered class in
neither table (a test keeps it empty, so a new module cannot be skipped silently).

Three kinds of maps come out (:class:`AttentionMaps`):

- ``spatial``: a value per position of the module's feature map: a spatial gate (CBAM, BAM,
  sSE, SGE, triplet, coordinate attention, SimAM, ...; a gate on channels *and* positions is
  averaged over the channels), GC's softmax context weights, SIAU's part maps;
- ``query``: the attention of one query pixel over positions (Non-local, DANet's PAM,
  criss-cross, A^2, APNB/AFNB, OCR). Only that pixel's row is computed, from the module's own
  queries and keys, never the HW x HW matrix;
- ``channel``: a weight per channel (SE, ECA, GE, SRM, FcaNet, GSoP, SPA, cSE, CBAM's channel
  gate, SK's branch weights, ...).

Where a query map summarises more than one softmax row, it says so: criss-cross's "passes
combined" map multiplies the passes' attention matrices (which pixels' values reach the query
in R passes; the residual path and gamma are left out), APNB/AFNB spread each anchor's weight
evenly over the positions its pyramid bin averages (exact: the pooling is linear), and OCR
spreads each object region's weight by that region's soft mask (a summary: the region features
pass through a nonlinear projection before the attention).

Values are at the module's own resolution and for the first image of the batch; the tool
(``tools/visualize_attention.py``) resizes them to the image.
"""
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Type, Union

import torch
from torch import nn

from mmattn.models.base import BaseAttention
from mmattn.models.channel import (CSE, ECA, GSoP, SCSE, SE, SPA, SRM, SSE, FcaNet,
                                   GatherExcite)
from mmattn.models.context import (AFNBlock, APNBlock, ChannelIAU, CrissCross, DANetCAM,
                                   DANetPAM, DoubleAttention, GlobalContext, NonLocal,
                                   ObjectContext, RGA, SpatialIAU)
from mmattn.models.context.apnb import conv_module_forward, pyramid_pool
from mmattn.models.factory import attention_classes
from mmattn.models.spatial import (BAM, CBAM, CoordAttention, ResidualAttention, SGE, SimAM,
                                   SelectiveKernel, TripletAttention)
from mmattn.models.utils import norm_forward

__all__ = [
    'AttentionMaps', 'Extractor', 'Tap', 'QueryPoint', 'EXTRACTORS', 'CANNOT_DRAW',
    'AttentionRecorder', 'Record', 'find_attention_modules', 'uncovered_classes',
    'extract_maps'
]


@dataclass
class AttentionMaps:
    """The maps of one call of one module: name -> tensor (first image of the batch).

    ``spatial`` and ``query`` maps are (h, w) on the module's feature map (or, for AFNB, on the
    map its keys come from); ``channel`` maps are (C,).
    """

    spatial: Dict[str, torch.Tensor] = field(default_factory=dict)
    query: Dict[str, torch.Tensor] = field(default_factory=dict)
    channel: Dict[str, torch.Tensor] = field(default_factory=dict)

    def __bool__(self):
        return bool(self.spatial or self.query or self.channel)


@dataclass
class Tap:
    """What a forward hook on a submodule recorded during one call: its inputs and output."""

    inputs: tuple
    output: torch.Tensor


class QueryPoint:
    """The query pixel, as a fraction of the network input's height and width.

    ``index(h, w)`` is the cell of an h x w feature map (covering the whole network input)
    that holds the pixel.
    """

    def __init__(self, rel_y: float = 0.5, rel_x: float = 0.5):
        self.rel_y, self.rel_x = float(rel_y), float(rel_x)

    def index(self, h: int, w: int) -> Tuple[int, int]:
        return (min(h - 1, max(0, int(self.rel_y * h))), min(w - 1, max(0, int(self.rel_x * w))))

    def __repr__(self):
        return f'QueryPoint(rel_y={self.rel_y:.4f}, rel_x={self.rel_x:.4f})'


ExtractFn = Callable[[nn.Module, tuple, Dict[str, List[Tap]], QueryPoint],
                     Union[AttentionMaps, str]]


@dataclass(frozen=True)
class Extractor:
    """How to read one class's maps.

    Args:
        fn: ``fn(module, inputs, taps, query)`` -> :class:`AttentionMaps`, or a string saying
            why this instance has nothing to draw (e.g. GC with average pooling). ``inputs``
            are the module's positional inputs, ``taps`` maps each tapped submodule's path to
            the list of its calls during this call of the module.
        taps: paths of submodules (``module.get_submodule``) whose calls are recorded; a path
            the instance does not have (an optional branch) is skipped.
        shows: one line for the index: what the pictures show.
    """

    fn: ExtractFn
    taps: Tuple[str, ...] = ()
    shows: str = ''


EXTRACTORS: Dict[Type[BaseAttention], Extractor] = {}

# classes whose attention has no picture over the image, and why
CANNOT_DRAW: Dict[Type[BaseAttention], str] = {
    DANetCAM: 'its attention is a C x C matrix between channels (softmax of -X X^T): it has no '
              'weight per position and no weight per channel to draw',
    ChannelIAU: 'its attention is a C x C matrix between channels (softmax of X X^T): it has no '
                'weight per position and no weight per channel to draw',
}


def register(*classes: Type[BaseAttention], taps: Sequence[str] = (), shows: str = ''):
    """Decorator: ``fn`` extracts the maps of ``classes``."""

    def wrap(fn):
        for cls in classes:
            if cls in EXTRACTORS or cls in CANNOT_DRAW:
                raise KeyError(f'{cls.__name__} has an extractor already')
            EXTRACTORS[cls] = Extractor(fn, tuple(taps), shows)
        return fn

    return wrap


def uncovered_classes() -> List[str]:
    """Registered attention classes with neither an extractor nor a reason in CANNOT_DRAW."""
    return [name for name, cls in attention_classes().items()
            if cls not in EXTRACTORS and cls not in CANNOT_DRAW]


# -- helpers ----------------------------------------------------------------------------------
def _last(taps, path) -> Optional[Tap]:
    calls = taps.get(path) or []
    return calls[-1] if calls else None


def _img0(t: torch.Tensor) -> torch.Tensor:
    """First image of the batch on the CPU; float64 stays float64 (tests compare in it),
    half precision becomes float32."""
    t = t[0].detach().cpu()
    return t if t.dtype == torch.float64 else t.float()


def _softmax_row(energy: torch.Tensor) -> torch.Tensor:
    return energy.double().softmax(dim=-1)


def _spread_over_pyramid(weights: torch.Tensor, sizes, h: int, w: int) -> torch.Tensor:
    """(h, w) weights of the positions of a map whose pyramid-pooled anchors got ``weights``.

    The anchors are averages of the map's positions (ANN's pyramid pooling is linear), so the
    context ``sum_a w_a mean_{j in bin a} v_j`` equals ``sum_j eff_j v_j`` with ``eff`` the
    adjoint of the pooling applied to ``w``: computed here as the gradient of
    ``w . pyramid_pool(z)`` with respect to z, through the module's own pooling function.
    """
    with torch.enable_grad():
        z = torch.zeros(1, 1, h, w, dtype=weights.dtype, requires_grad=True)
        pooled = pyramid_pool(z, sizes)[0, 0]
        (eff, ) = torch.autograd.grad((pooled * weights.detach()).sum(), z)
    return eff[0, 0]


# -- channel gates ------------------------------------------------------------------------------
@register(SE, ECA, FcaNet, CSE, SPA, SRM, GSoP, taps=('gate', ),
          shows='channel weights: the output of the gate (sigmoid), one per channel')
def _gate_module(m, inputs, taps, query):
    gate = _last(taps, 'gate')
    if gate is None:
        return f'its gate ({type(m.gate).__name__}) did not run as a module'
    return AttentionMaps(channel={'channel gate': _img0(gate.output).flatten()})


@register(GatherExcite, taps=('gate', ),
          shows='channel weights (global extent) or the gate averaged over channels (extent e)')
def _gather_excite(m, inputs, taps, query):
    gate = _last(taps, 'gate')
    if gate is None:
        return 'its gate did not run as a module'
    g = _img0(gate.output)  # (C, h, w): 1 x 1 for the global extent
    if g.shape[-2:] == (1, 1):
        return AttentionMaps(channel={'channel gate': g.flatten()})
    return AttentionMaps(spatial={f'gate (extent {m.extent}), mean over channels': g.mean(0)})


@register(SelectiveKernel, taps=('fc_select', ),
          shows="per channel, the softmax weight of each branch (branch m has dilation m)")
def _selective_kernel(m, inputs, taps, query):
    logits = _img0(_last(taps, 'fc_select').output).reshape(m.num_branches, m.in_channels)
    weights = logits.softmax(dim=0)
    return AttentionMaps(channel={f'branch {i + 1} (dilation {i + 1}) weight': weights[i]
                                  for i in range(m.num_branches)})


# -- spatial gates ------------------------------------------------------------------------------
def _zpool_gate(gate_module, tap: Tap) -> torch.Tensor:
    """sigmoid(norm(conv(z-pool))) of a ZPoolGate, from its recorded conv output."""
    return torch.sigmoid(norm_forward(gate_module.bn, tap.output))


@register(CBAM, taps=('fc2', 'spatial_gate.conv'),
          shows='spatial gate (sigmoid of the 7x7 conv on [max, mean] over channels); '
          'channel gate')
def _cbam(m, inputs, taps, query):
    # fc2 runs once per pooled vector (avg, max); the channel gate is the sigmoid of the sum
    logits = sum(t.output for t in taps.get('fc2', []))
    maps = AttentionMaps(channel={'channel gate': _img0(torch.sigmoid(logits)).flatten()})
    if m.spatial_gate is not None:
        gate = _zpool_gate(m.spatial_gate, _last(taps, 'spatial_gate.conv'))
        maps.spatial['spatial gate'] = _img0(gate)[0]
    return maps


@register(TripletAttention, taps=('cw.conv', 'hc.conv', 'hw.conv'),
          shows='the hw branch\'s spatial gate; the gate of all three branches per position, '
          'averaged over channels')
def _triplet(m, inputs, taps, query):
    g_cw = _img0(_zpool_gate(m.cw, _last(taps, 'cw.conv')))[0]  # (C, W): gates x[c, :, w]
    g_hc = _img0(_zpool_gate(m.hc, _last(taps, 'hc.conv')))[0]  # (H, C): gates x[c, h, :]
    total = g_cw.mean(0)[None, :] + g_hc.mean(1)[:, None]
    maps = AttentionMaps()
    if m.hw is not None:
        g_hw = _img0(_zpool_gate(m.hw, _last(taps, 'hw.conv')))[0]  # (H, W)
        maps.spatial['hw gate'] = g_hw
        total = total + g_hw
    # out = mean of the branches' x * gate: x times the mean gate, element by element
    maps.spatial['mean gate of the branches, mean over channels'] = total / (
        3 if m.hw is not None else 2)
    return maps


@register(SSE, taps=('gate', ), shows='spatial gate (sigmoid of a 1x1 conv)')
def _sse(m, inputs, taps, query):
    return AttentionMaps(spatial={'spatial gate': _img0(_last(taps, 'gate').output)[0]})


@register(SCSE, taps=('cSE.gate', 'sSE.gate'),
          shows='sSE\'s spatial gate and cSE\'s channel gate (fused by max or sum)')
def _scse(m, inputs, taps, query):
    return AttentionMaps(spatial={'sSE spatial gate': _img0(_last(taps, 'sSE.gate').output)[0]},
                         channel={'cSE channel gate':
                                  _img0(_last(taps, 'cSE.gate').output).flatten()})


@register(SGE, shows='the group gates (sigmoid of the normalised similarity to the group '
          'mean), averaged over groups')
def _sge(m, inputs, taps, query):
    # SGE has no submodule to tap: its gate is recomputed from the input with its parameters
    x = inputs[0]
    n, c, h, w = x.shape
    g = m.groups
    xg = x.reshape(n * g, c // g, h, w)
    t = (xg * xg.mean(dim=(2, 3), keepdim=True)).sum(dim=1).reshape(n * g, h * w)
    if h * w > 1:
        t = t - t.mean(dim=1, keepdim=True)
        t = t / (t.std(dim=1, keepdim=True) + m.eps)
    else:
        t = torch.zeros_like(t)
    gate = torch.sigmoid(t.reshape(n, g, h, w) * m.weight + m.bias)
    return AttentionMaps(spatial={f'gate, mean over {g} groups': _img0(gate).mean(0)})


@register(SimAM, shows='the energy gate sigmoid(d / (4 (var + lambda)) + 0.5), averaged over '
          'channels')
def _simam(m, inputs, taps, query):
    # parameter-free: the gate is recomputed from the input
    x = inputs[0]
    n = max(x.shape[2] * x.shape[3] - 1, 1)
    d = (x - x.mean(dim=(2, 3), keepdim=True)).pow(2)
    gate = torch.sigmoid(d / (4 * (d.sum(dim=(2, 3), keepdim=True) / n + m.e_lambda)) + 0.5)
    return AttentionMaps(spatial={'gate, mean over channels': _img0(gate).mean(0)})


@register(CoordAttention, taps=('conv_h', 'conv_w'),
          shows='the product of the H and W gates, averaged over channels')
def _coordatt(m, inputs, taps, query):
    a_h = torch.sigmoid(_img0(_last(taps, 'conv_h').output))  # (C, H, 1)
    a_w = torch.sigmoid(_img0(_last(taps, 'conv_w').output))  # (C, 1, W) after the permute
    a_w = a_w.reshape(a_w.shape[0], 1, -1)
    return AttentionMaps(spatial={'a_h * a_w, mean over channels': (a_h * a_w).mean(0)})


@register(BAM, taps=('channel_fc2', 'spatial_out'),
          shows='the gate 1 + sigmoid(Mc Ms) averaged over channels; the spatial branch Ms; '
          'the channel branch Mc')
def _bam(m, inputs, taps, query):
    mc = _img0(_last(taps, 'channel_fc2').output).flatten()  # (C,)
    ms = _img0(_last(taps, 'spatial_out').output)[0]  # (H, W)
    att = mc[:, None, None] * ms if m.fusion == 'product' else mc[:, None, None] + ms
    return AttentionMaps(
        spatial={'gate 1 + sigmoid(Mc Ms), mean over channels': (1 + torch.sigmoid(att)).mean(0),
                 'spatial branch Ms (logits)': ms},
        channel={'channel branch Mc (logits)': mc})


@register(ResidualAttention, taps=('mask_conv2', ),
          shows='the soft mask M (sigmoid), averaged over channels')
def _resatt(m, inputs, taps, query):
    mask = torch.sigmoid(_img0(_last(taps, 'mask_conv2').output))
    return AttentionMaps(spatial={'soft mask M, mean over channels': mask.mean(0)})


@register(RGA, shows='the spatial gate (RGA-S) and the channel gate (RGA-C)')
def _rga(m, inputs, taps, query):
    # the branches' last layers run through a helper, not as modules: recompute the gates with
    # the module's own methods
    x = inputs[0]
    maps = AttentionMaps()
    if m.use_spatial:
        gate = torch.sigmoid(m.spatial_logits(x))
        maps.spatial['spatial gate'] = _img0(gate)[0]
        x = gate * x
    if m.use_channel:
        maps.channel['channel gate'] = _img0(torch.sigmoid(m.channel_logits(x))).flatten()
    return maps


@register(SpatialIAU, taps=('part_attn.0', ),
          shows='the P part maps (sigmoid), one panel each')
def _siau(m, inputs, taps, query):
    parts = torch.sigmoid(norm_forward(m.part_attn[1], _last(taps, 'part_attn.0').output))
    return AttentionMaps(spatial={f'part {k}': p for k, p in enumerate(_img0(parts))})


@register(GlobalContext, taps=('conv_mask', ),
          shows='the context weights (softmax over positions of a 1x1 conv); the channel_mul '
          'gate')
def _global_context(m, inputs, taps, query):
    if m.pooling_type != 'att':
        return "pooling_type='avg' weighs every position the same (global average pooling)"
    weights = _img0(_last(taps, 'conv_mask').output)[0]
    maps = AttentionMaps(spatial={'context weights (softmax over positions)':
                                  weights.flatten().softmax(0).reshape(weights.shape)})
    if m.channel_mul_conv is not None:
        context = m.spatial_pool(inputs[0])
        gate = torch.sigmoid(m._run(m.channel_mul_conv, context))
        maps.channel['channel_mul gate'] = _img0(gate).flatten()
    return maps


# -- pixel-to-pixel attention: the row of one query pixel ---------------------------------------
@register(NonLocal, taps=('theta', 'phi'),
          shows='the pairwise weights f(query, j) of the query pixel over the positions j '
          '(the max-pooled grid with sub_sample)')
def _non_local(m, inputs, taps, query):
    x = inputs[0]
    qy, qx = query.index(*x.shape[2:])
    if m.mode == 'gaussian':
        src = m.pool(x) if m.pool is not None else x
        q, k = x[0, :, qy, qx], src[0]
    else:
        q, k = _last(taps, 'theta').output[0, :, qy, qx], _last(taps, 'phi').output[0]
    size = k.shape[1:]
    q, k = q.double(), k.flatten(1).double()  # (C',), (C', M)
    n_keys = k.shape[1]
    if m.mode == 'gaussian':
        row = _softmax_row(q @ k)
    elif m.mode == 'embedded_gaussian':
        row = _softmax_row((q @ k) * (m.inter_channels**-0.5 if m.use_scale else 1.0))
    elif m.mode == 'dot_product':
        row = (q @ k) / n_keys
    else:  # concatenation: ReLU(w_theta . theta_i + w_phi . phi_j) / M
        w = m.concat_project.weight.flatten().double()
        row = torch.relu(w[:m.inter_channels] @ q + w[m.inter_channels:] @ k) / n_keys
    return AttentionMaps(query={'weights of the query pixel': row.reshape(size)})


@register(DANetPAM, taps=('query_conv', 'key_conv'),
          shows='softmax(q_p . k_j) of the query pixel p over every position j')
def _danet_pam(m, inputs, taps, query):
    q, k = _last(taps, 'query_conv').output[0], _last(taps, 'key_conv').output[0]
    qy, qx = query.index(*q.shape[1:])
    row = _softmax_row(q[:, qy, qx].double() @ k.flatten(1).double())
    return AttentionMaps(query={'attention of the query pixel': row.reshape(k.shape[1:])})


def criss_cross_row(q: torch.Tensor, k: torch.Tensor, qy: int, qx: int) -> torch.Tensor:
    """(H, W) attention of pixel (qy, qx) in one criss-cross pass, from q, k of (C', H, W):
    one softmax over its column (itself excluded) and its row, as CrissCross does."""
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


def _criss_cross_all(q: torch.Tensor, k: torch.Tensor):
    """Every pixel's cross weights, (H, W, H) to its column and (H, W, W) to its row: the
    module's own O(HW (H + W)) energies, never an HW x HW matrix."""
    h = q.shape[1]
    e_h = torch.einsum('chw,cgw->hwg', q, k)
    idx = torch.arange(h)
    e_h = e_h.masked_fill((idx[:, None] == idx[None, :])[:, None, :], float('-inf'))
    e_w = torch.einsum('chw,chv->hwv', q, k)
    a = torch.cat([e_h, e_w], dim=-1).softmax(-1)
    return a[..., :h], a[..., h:]


@register(CrissCross, taps=('query_conv', 'key_conv'),
          shows='the query pixel\'s weights on its row and column in each pass, and the '
          'product of the passes\' attention (where its R passes gather from)')
def _criss_cross(m, inputs, taps, query):
    qs = [t.output[0].double().cpu() for t in taps.get('query_conv', [])]
    ks = [t.output[0].double().cpu() for t in taps.get('key_conv', [])]
    if not qs:
        return 'its query conv did not run'
    qy, qx = query.index(*qs[0].shape[1:])
    maps = AttentionMaps()
    for r, (q, k) in enumerate(zip(qs, ks)):
        maps.query[f'pass {r + 1}: row and column'] = criss_cross_row(q, k, qy, qx)
    if len(qs) > 1:
        # the last pass gathers from the query's cross; each of those pixels gathered from its
        # own cross in the pass before: multiply the passes' (sparse) attention backwards
        w = criss_cross_row(qs[-1], ks[-1], qy, qx)
        for q, k in zip(reversed(qs[:-1]), reversed(ks[:-1])):
            col, row = _criss_cross_all(q, k)
            w = torch.einsum('hw,hwg->gw', w, col) + torch.einsum('hw,hwv->hv', w, row)
        maps.query[f'passes 1-{len(qs)} combined'] = w
    return maps


@register(DoubleAttention, taps=('conv_b', 'conv_v'),
          shows='the query pixel\'s weights over positions, sum_n softmax_n(V)[n, p] '
          'softmax_j(B)[n, j]; the gather maps averaged')
def _double_attention(m, inputs, taps, query):
    b = _img0(_last(taps, 'conv_b').output).double()  # (c_n, H, W)
    v = _img0(_last(taps, 'conv_v').output).double()
    size = b.shape[1:]
    gather = b.flatten(1).softmax(dim=1)  # each descriptor's distribution over positions
    qy, qx = query.index(*size)
    dist = v[:, qy, qx].softmax(0)  # the query pixel's weights over the c_n descriptors
    return AttentionMaps(
        query={'attention of the query pixel': (dist @ gather).reshape(size)},
        spatial={f'gather maps, mean over {m.c_n}': gather.mean(0).reshape(size)})


def _anchor_row(q_feats, key_feats, sizes, scale, query):
    """The pixel-level weights of one query over pyramid-pooled keys (APNB, AFNB)."""
    qy, qx = query.index(*q_feats.shape[2:])
    q = q_feats[0, :, qy, qx].double()
    anchors = pyramid_pool(key_feats, sizes)[0].double()  # (C, sum s^2)
    weights = (q @ anchors * scale).softmax(0)
    return _spread_over_pyramid(weights, sizes, *key_feats.shape[2:])


@register(APNBlock, shows='the query pixel\'s softmax weights over the pyramid anchors, each '
          'spread over the positions its bin averages')
def _apnb(m, inputs, taps, query):
    # query and key share one projection, run through the module's own helper
    key = conv_module_forward(m.key_project, inputs[0])
    row = _anchor_row(key, key, m.pool_sizes, m.key_channels**-0.5, query)
    return AttentionMaps(query={'attention of the query pixel (anchors spread)': row})


@register(AFNBlock, shows='the high-level query pixel\'s weights over the low-level map\'s '
          'pyramid anchors, spread over their bins')
def _afnb(m, inputs, taps, query):
    low, high = inputs[0], inputs[1]
    q = conv_module_forward(m.query_project, high)
    key = conv_module_forward(m.key_project, low)
    row = _anchor_row(q, key, m.pool_sizes, m.key_channels**-0.5, query)
    return AttentionMaps(query={'attention of the query pixel over the low-level map': row})


@register(ObjectContext, shows='the query pixel\'s weights over the K object regions, each '
          'spread over the image by its region\'s soft mask')
def _object_context(m, inputs, taps, query):
    feats, logits = inputs[0], inputs[1]
    if m.mid_conv is not None:
        feats = conv_module_forward(m.mid_conv, feats)
    qy, qx = query.index(*feats.shape[2:])
    regions = m.object_regions(feats, logits)
    q = m._seq(m.f_pixel, feats)[0, :, qy, qx].double()
    k = m._seq(m.f_object, regions)[0].flatten(1).double()  # (C, K)
    weights = (q @ k * m.key_channels**-0.5).softmax(0)  # over the K regions
    masks = logits[0].flatten(1).double().softmax(dim=1)  # (K, HW): each region's soft mask
    row = (weights @ masks).reshape(feats.shape[2:])
    return AttentionMaps(query={'attention of the query pixel via the object regions': row})


# -- running a model ------------------------------------------------------------------------------
def find_attention_modules(model: nn.Module) -> List[Tuple[str, BaseAttention]]:
    """The outermost mmattn attention modules of ``model`` (SCSE, not the cSE/sSE inside it),
    in module order."""
    found = []
    for name, module in model.named_modules():
        if not isinstance(module, BaseAttention):
            continue
        if any(outer == '' or name.startswith(outer + '.') for outer, _ in found):
            continue
        found.append((name, module))
    return found


def extract_maps(module: BaseAttention, inputs: tuple, taps: Dict[str, List[Tap]],
                 query: QueryPoint) -> Union[AttentionMaps, str]:
    """Run the extractor of ``module``'s class, or return why it cannot be drawn."""
    cls = type(module)
    if cls in CANNOT_DRAW:
        return CANNOT_DRAW[cls]
    if cls not in EXTRACTORS:
        return (f'no extractor for {cls.__name__} in '
                f'mmattn.visualization.attention_maps.EXTRACTORS')
    with torch.no_grad():
        maps = EXTRACTORS[cls].fn(module, inputs, taps, query)
    if isinstance(maps, AttentionMaps):
        for kind in (maps.spatial, maps.query, maps.channel):
            for name, t in kind.items():
                kind[name] = t.detach().cpu()
    return maps


@dataclass
class Record:
    """One call of one attention module: its name in the model, class, and maps (or why not)."""

    name: str
    cls: Type[BaseAttention]
    call: int
    maps: Optional[AttentionMaps]
    reason: Optional[str] = None


class AttentionRecorder:
    """Forward hooks on every attention module of a model (and on the submodules their
    extractors tap); each call of a module is turned into a :class:`Record` at once, while its
    inputs are still what it saw.

    Use as a context manager around the forward pass; the hooks are removed on exit. Set
    :attr:`query` before the attention modules run (the tool does it from a hook on the data
    preprocessor, once the network input's size is known).
    """

    def __init__(self, model: nn.Module, query: Optional[QueryPoint] = None):
        self.modules = find_attention_modules(model)
        self.query = query or QueryPoint()
        self.records: List[Record] = []
        self._handles = []
        self._taps: Dict[str, Dict[str, List[Tap]]] = {}
        self._calls: Dict[str, int] = {}
        self._extracting = False

    def __enter__(self):
        for name, module in self.modules:
            self._taps[name] = {}
            ext = EXTRACTORS.get(type(module))
            for path in (ext.taps if ext else ()):
                try:
                    sub = module.get_submodule(path)
                except AttributeError:
                    continue  # an optional branch this instance does not have
                if sub is None:
                    continue
                self._handles.append(sub.register_forward_hook(self._tap_hook(name, path)))
            self._handles.append(module.register_forward_hook(self._module_hook(name)))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _tap_hook(self, name, path):
        def hook(sub, inputs, output):
            if not self._extracting:
                self._taps[name].setdefault(path, []).append(Tap(inputs, output))
        return hook

    def _module_hook(self, name):
        def hook(module, inputs, output):
            if self._extracting:
                return
            call = self._calls.get(name, 0)
            self._calls[name] = call + 1
            taps, self._taps[name] = self._taps[name], {}
            self._extracting = True  # an extractor may run submodules: record nothing then
            try:
                result = extract_maps(module, inputs, taps, self.query)
            finally:
                self._extracting = False
            if isinstance(result, str):
                self.records.append(Record(name, type(module), call, None, result))
            elif not result:
                self.records.append(Record(name, type(module), call, None,
                                           'the extractor returned no map'))
            else:
                self.records.append(Record(name, type(module), call, result))
        return hook

    def not_run(self) -> List[Tuple[str, BaseAttention]]:
        """Attention modules that did not run during the recorded passes."""
        return [(n, m) for n, m in self.modules if n not in self._calls]
