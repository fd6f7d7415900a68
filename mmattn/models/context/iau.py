"""Interaction-aggregation units (IAU): channel (CIAU) and spatial, part-level (SIAU).

Hou, Ma, Chang, Shan, Chen. "Interaction-and-Aggregation Network for Person
Re-identification", CVPR 2019; "IAUnet: Global Context-Aware Feature Learning for Person
Re-Identification", TNNLS 2020. Authors' code: https://github.com/blue-blue272/ImgReID-IAnet
(``models/IAU.py``, ``models/SIAU.py``).

The authors' ``IAU`` runs the channel unit and then the spatial unit; here they are two modules
to be stacked in that order. Their ``SIAU`` builds its identity matrix with ``.cuda()``; ours
works on any device.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..layers import cpu_kernels, use_fast_path
from ..utils import autocast_off, conv1x1_norm_act, reduced_channels, sequential_forward


def _authors_conv_init(module):
    """The authors' init of every conv and BN in IAU/SIAU: conv weights N(0, sqrt(2 / (k*k*out)))
    (their biases keep PyTorch's default), BN weight 1, bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0, math.sqrt(2. / n))
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _wide_dtype(x):
    """float32 for half inputs, else the input's type: sums over all positions (X X^T, part
    pooling) overflow float16 on detection-sized maps."""
    return torch.promote_types(x.dtype, torch.float32)


@MODELS.register_module()
class ChannelIAU(BaseAttention):
    """Channel interaction-aggregation unit (CIAU): non-local attention among channels.

    X = x as (N, C, HW); f = softmax over the last axis of X X^T (C x C, no embedding, no
    scale); y = f X; out = BN(conv1x1(y)) + x, the conv with bias, the BN's weight and bias
    **initialised to 0** (the unit starts as the identity).

    The energies are computed in float32 under autocast: X X^T sums over every position.

    Submodule names follow the authors' ``IAU``: ``W1`` (conv, BN).

    Args:
        in_channels: C.
        norm_cfg: the norm after the output conv.
        init_cfg: mmengine init config.
    """

    _abbr_ = 'ciau'
    paper = ('Interaction-and-Aggregation Network for Person Re-identification '
             '(Hou et al., CVPR 2019)')
    code = 'https://github.com/blue-blue272/ImgReID-IAnet'
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    # configs/faster_rcnn_iau_r50_coco.py places both IAU modules; each alone here
    placement = dict(stage_plugins=[
        dict(cfg=dict(type='mmattn.ChannelIAU'), stages=(False, True, True, False))])
    no_maps = ('its attention is a C x C matrix between channels (softmax of X X^T): it has no '
               'weight per position and no weight per channel to draw')

    def __init__(self, in_channels, *, norm_cfg=dict(type='BN'), init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        self.W1 = conv1x1_norm_act(in_channels, in_channels, norm_cfg, bias=True)
        _authors_conv_init(self)
        self.reset_authors_init()

    def reset_authors_init(self):
        nn.init.zeros_(self.W1[1].weight)
        nn.init.zeros_(self.W1[1].bias)

    def forward(self, x):
        self.check_input(x)
        n, c, h, w = x.shape
        with autocast_off(x.device.type):
            g = x.reshape(n, c, h * w).to(_wide_dtype(x))
            # bmm, not matmul: over a training step matmul's batched path holds two more
            # feature-map-sized tensors
            energy = torch.bmm(g, g.transpose(1, 2))
            f = F.softmax(energy, dim=-1)
            y = torch.bmm(f, g).to(x.dtype)
        return sequential_forward(self.W1, y.reshape(n, c, h, w)) + x


@MODELS.register_module()
class SpatialIAU(BaseAttention):
    """Spatial interaction-aggregation unit (SIAU): relations among body-part features, pooled
    into one channel vector added to every position.

    a = sigmoid(BN(conv1x1 C -> P (bias)))  (P part maps, the authors' P = 4);
    part_k = sum over positions of a_k * x  (a weighted **sum**, as the authors'), u = GAP(x);
    the P parts and u -> 1x1 conv (bias) C -> C/2;
    edges: e(i, j) = BN(conv1x1(cat[abs(part_i - part_j), u])) -> 1 (bias), the diagonal
    excluded, softmax over j;
    nodes: part_i' = ReLU(BN(conv1x1(cat[part_i, sum_j e(i, j) part_j]))) (bias) -> C/2;
    v = cat[mean_i part_i', u] -> 1x1 conv (bias) + BN, the BN's weight and bias
    **initialised to 0**; out = x + v (broadcast over positions).

    Everything after the part pooling works on P + 1 vectors and runs in float32 under
    autocast, where sums over positions could overflow float16.

    On the CPU the part sums and the global average are one product
    (:func:`~mmattn.models.layers.cpu_kernels.part_pool`).

    Submodules, with the authors' names in ``IAU``/``SIAU``: ``part_attn`` (``sa.conv.conv``,
    ``sa.conv.bn``), ``reduce`` (``g``), ``edge`` (``SIAU.module_w.relation``), ``node``
    (``SIAU.module_l.fsm``), ``W2`` (``W2``).

    The authors also supervise the part maps with human-parsing labels; ``forward(x,
    return_parts=True)`` returns ``(out, a)`` for such a loss.

    Args:
        in_channels: C.
        num_parts: P (authors: 4: head, upper body, lower body, shoes); at least 2, since a
            part's own edge is excluded.
        reduction: C / width of the part features (authors: 2).
        norm_cfg / act_cfg: norms of every conv; activation of the node update.
        init_cfg: mmengine init config.
    """

    _abbr_ = 'siau'
    paper = ('Interaction-and-Aggregation Network for Person Re-identification '
             '(Hou et al., CVPR 2019)')
    code = 'https://github.com/blue-blue272/ImgReID-IAnet'
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    placement = dict(stage_plugins=[
        dict(cfg=dict(type='mmattn.SpatialIAU', num_parts=4, reduction=2),
             stages=(False, True, True, False))])
    map_taps = ('part_attn.0', )
    maps_caption = 'the P part maps (sigmoid), one panel each'

    def attention_maps(self, inputs, taps, query):
        from mmattn.models.utils import norm_forward
        from mmattn.visualization import AttentionMaps, first_image
        conv = taps['part_attn.0'][-1].output
        parts = torch.sigmoid(norm_forward(self.part_attn[1], conv))
        return AttentionMaps(spatial={f'part {k}': p for k, p in enumerate(first_image(parts))})

    def __init__(self, in_channels, *, num_parts=4, reduction=2, norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU'), init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        if not isinstance(num_parts, int) or num_parts < 2:
            raise ValueError(f'SpatialIAU: num_parts must be an int >= 2 (a part attends to '
                             f'the others), got {num_parts!r}')
        self.num_parts = num_parts
        self.inter_channels = ci = reduced_channels(in_channels, reduction)
        self.part_attn = conv1x1_norm_act(in_channels, num_parts, norm_cfg, bias=True)
        self.reduce = nn.Conv2d(in_channels, ci, 1, bias=True)
        self.edge = conv1x1_norm_act(2 * ci, 1, norm_cfg, bias=True)
        self.node = conv1x1_norm_act(2 * ci, ci, norm_cfg, act_cfg, bias=True)
        # 2 * ci == C for the even widths of the authors' nets; odd widths lose one channel
        self.W2 = conv1x1_norm_act(2 * ci, in_channels, norm_cfg, bias=True)
        _authors_conv_init(self)
        self.reset_authors_init()

    def reset_authors_init(self):
        nn.init.zeros_(self.W2[1].weight)
        nn.init.zeros_(self.W2[1].bias)

    def forward(self, x, return_parts=False):
        self.check_input(x)
        n, c, h, w = x.shape
        p = self.num_parts
        a = torch.sigmoid(sequential_forward(self.part_attn, x))
        dtype = self.reduce.weight.dtype
        with autocast_off(x.device.type):
            xf = x.reshape(n, c, h * w).to(dtype)
            af = a.reshape(n, p, h * w).to(dtype)
            if use_fast_path(x):
                nodes = cpu_kernels.part_pool(xf, af)
            else:  # the P part sums and the global average pooling
                parts = torch.bmm(af, xf.transpose(1, 2)).transpose(1, 2)  # (N, C, P)
                nodes = torch.cat([parts, xf.mean(dim=2, keepdim=True)], dim=2)  # (N, C, P + 1)
            nodes = self.reduce(nodes.unsqueeze(3)).squeeze(3)
            parts, u = nodes[:, :, :p], nodes[:, :, p:]  # (N, C', P), (N, C', 1)
            diff = (parts.unsqueeze(3) - parts.unsqueeze(2)).abs()  # (N, C', P, P)
            edges = torch.cat([diff, u.unsqueeze(3).expand_as(diff)], dim=1)
            energy = sequential_forward(self.edge, edges).squeeze(1)
            self_edge = torch.eye(p, dtype=torch.bool, device=x.device)
            weights = F.softmax(energy.masked_fill(self_edge, float('-inf')), dim=-1)
            neighbours = torch.matmul(parts, weights.transpose(1, 2))  # sum_j e(i,j) part_j
            upd = torch.cat([parts, neighbours], dim=1).unsqueeze(3)  # (N, 2C', P, 1)
            upd = sequential_forward(self.node, upd).mean(dim=2)  # (N, C', 1)
            v = sequential_forward(self.W2, torch.cat([upd, u], dim=1).unsqueeze(3))
        out = x + v.to(x.dtype)
        return (out, a) if return_parts else out

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, num_parts={self.num_parts}, '
                f'inter_channels={self.inter_channels}')

