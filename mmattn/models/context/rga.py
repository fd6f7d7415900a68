"""Relation-aware global attention (RGA).

Zhang, Lan, Zeng, Jin, Chen. "Relation-Aware Global Attention for Person Re-identification",
CVPR 2020. Authors' code: https://github.com/microsoft/Relation-Aware-Global-Attention-Networks
(``reid/models/models_utils/rga_modules.py::RGA_Module``).
"""
import torch
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..layers import adaptive_avg_pool2d, cpu_kernels, use_fast_path
from ..utils import (conv1x1_norm_act, has_forward_hooks, reduced_channels,
                     sequential_forward)


@MODELS.register_module()
class RGA(BaseAttention):
    """Relation-aware global attention: a spatial gate, then a channel gate, each learnt from a
    node's pairwise relations with all nodes plus a unary term.

    Spatial (RGA-S), nodes = positions: theta, phi = ReLU(BN(conv1x1 C -> C/8, no bias));
    r(i, j) = theta_i . phi_j; at position i, the relation vector [r(i, .), r(., i)] (2 * HW
    values) -> gg: 1x1 conv (no bias) + BN + ReLU -> HW/8; unary: mean over channels of
    ReLU(BN(conv1x1 C -> C/8)); W: cat[unary, relations] -> 1x1 conv -> /8 + BN + ReLU -> 1x1
    conv -> 1 + BN; x = sigmoid(.) * x.
    Channel (RGA-C), nodes = channels, each described by its spatial map (HW values): the same
    with 1x1 convs over the HW axis (HW -> HW/8) for theta, phi and the unary term, relations
    of 2C values -> C/8, and a channel gate x = sigmoid(.) * x.

    **Any input size.** The authors fix HW at construction (``in_spatial``): the relation
    vector of the spatial branch has one entry per position and the channel branch's convs run
    over the positions. Here the positions are those of a fixed grid, ``spatial_size``:

    - spatial branch: position i keeps its own node, and its relations go to the grid's cells:
      r(i, k) = theta_i . mean_{j in cell k} phi_j = mean_{j in cell k} r(i, j), and likewise
      r(k, i). Because the relation is bilinear, pooling the embeddings is the same as
      average-pooling the authors' relation vector over its HW entries to the grid, so the
      gate stays per pixel at the input's resolution;
    - channel branch: each channel's map is adaptive-average-pooled to the grid before it is
      used as the channel's feature vector (as FcaNet pools to its DCT basis size); the gate is
      one value per channel, applied to the full-size input.

    On an input of exactly ``spatial_size`` all pooling is the identity and the module computes
    the authors' formula, with the same parameters under the same names: the authors'
    checkpoints load. A smaller input is spread over the grid (adaptive pooling repeats its
    values).

    Args:
        in_channels: C.
        spatial_size: (H, W) of the relation grid; an int means a square. The authors use the
            stage's own size for a 256x128 person crop: (64, 32), (32, 16), (16, 8), (16, 8)
            after the four stages of a last-stride-1 ResNet-50. Default (16, 8).
        use_spatial / use_channel: the branches (both: the authors' RGA-SC).
        cha_ratio: C / (embedding width) of the spatial branch (authors: 8).
        spa_ratio: HW / (embedding width) of the channel branch (authors: 8).
        down_ratio: reduction inside W_spatial / W_channel (authors: 8).
        norm_cfg / act_cfg: norm and activation of every conv unit.
        init_cfg: mmengine init config.

    Widths are the authors' ``//`` with a minimum of 1 (theirs reach 0 below C = 8).

    On the CPU ``gg``'s weights are applied to the embeddings, never to the relation vectors
    (:func:`~mmattn.models.layers.cpu_kernels.regrouped_relations`); elsewhere the relation
    vectors are formed and ``gg``'s conv runs on them, as in the authors' code.
    """

    _abbr_ = 'rga'
    paper = ('Relation-Aware Global Attention for Person Re-identification '
             '(Zhang et al., CVPR 2020)')
    code = 'https://github.com/microsoft/Relation-Aware-Global-Attention-Networks'
    variants = {'spatial_only': dict(use_channel=False),
                'channel_only': dict(use_spatial=False)}
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    # the detection config's grids (the authors' cell counts laid out landscape)
    placement = dict(stage_plugins=[
        dict(cfg=dict(type='mmattn.RGA', use_spatial=True, use_channel=True, cha_ratio=8,
                      spa_ratio=8, down_ratio=8, spatial_size=size), stages=stages)
        for size, stages in (((32, 64), (True, False, False, False)),
                             ((16, 32), (False, True, False, False)),
                             ((8, 16), (False, False, True, True)))])
    maps_caption = 'the spatial gate (RGA-S) and the channel gate (RGA-C)'

    def attention_maps(self, inputs, taps, query):
        from mmattn.visualization import AttentionMaps, first_image
        # the branches' last layers run through a helper, not as modules: the gates are
        # recomputed with the module's own methods
        x = inputs[0]
        maps = AttentionMaps()
        if self.use_spatial:
            gate = torch.sigmoid(self.spatial_logits(x))
            maps.spatial['spatial gate'] = first_image(gate)[0]
            x = gate * x
        if self.use_channel:
            maps.channel['channel gate'] = first_image(
                torch.sigmoid(self.channel_logits(x))).flatten()
        return maps

    def __init__(self, in_channels, *, spatial_size=(16, 8), use_spatial=True, use_channel=True,
                 cha_ratio=8, spa_ratio=8, down_ratio=8, norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU'), init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        if isinstance(spatial_size, int):
            spatial_size = (spatial_size, spatial_size)
        spatial_size = tuple(int(s) for s in spatial_size)
        if len(spatial_size) != 2 or min(spatial_size) < 1:
            raise ValueError(f'RGA: spatial_size must be (H, W) with H, W >= 1, '
                             f'got {spatial_size}')
        if not (use_spatial or use_channel):
            raise ValueError('RGA: at least one of use_spatial and use_channel must be True')
        self.spatial_size = spatial_size
        self.use_spatial = use_spatial
        self.use_channel = use_channel
        self.in_spatial = spatial_size[0] * spatial_size[1]
        self.inter_channel = reduced_channels(in_channels, cha_ratio, arg='cha_ratio')
        self.inter_spatial = reduced_channels(self.in_spatial, spa_ratio, arg='spa_ratio',
                                              of='the positions of spatial_size')
        c, s = in_channels, self.in_spatial
        ic, is_ = self.inter_channel, self.inter_spatial
        if use_spatial:
            self.theta_spatial = conv1x1_norm_act(c, ic, norm_cfg, act_cfg, bias=False)
            self.phi_spatial = conv1x1_norm_act(c, ic, norm_cfg, act_cfg, bias=False)
            self.gx_spatial = conv1x1_norm_act(c, ic, norm_cfg, act_cfg, bias=False)
            self.gg_spatial = conv1x1_norm_act(2 * s, is_, norm_cfg, act_cfg, bias=False)
            self.W_spatial = self._gate_net(1 + is_, down_ratio, norm_cfg, act_cfg)
        if use_channel:
            self.theta_channel = conv1x1_norm_act(s, is_, norm_cfg, act_cfg, bias=False)
            self.phi_channel = conv1x1_norm_act(s, is_, norm_cfg, act_cfg, bias=False)
            self.gx_channel = conv1x1_norm_act(s, is_, norm_cfg, act_cfg, bias=False)
            self.gg_channel = conv1x1_norm_act(2 * c, ic, norm_cfg, act_cfg, bias=False)
            self.W_channel = self._gate_net(1 + ic, down_ratio, norm_cfg, act_cfg)

    @staticmethod
    def _gate_net(channels, down_ratio, norm_cfg, act_cfg):
        mid = reduced_channels(channels, down_ratio, arg='down_ratio',
                               of="the gate's input channels")
        return nn.Sequential(*conv1x1_norm_act(channels, mid, norm_cfg, act_cfg, bias=False),
                             *conv1x1_norm_act(mid, 1, norm_cfg, bias=False))

    @staticmethod
    def _relations(gg, a, b, a_grid, b_grid):
        """gg's conv applied to the relation vectors. Returns (N, out, nodes).

        Node i (a column of ``a``, ``b``) has the relation vector [a_i . b_grid_k for all k,
        a_grid_k . b_i for all k] (2P values): the vectors (N, 2P, nodes) go through gg's
        conv, as in the authors' code.
        """
        # the regrouped products read gg's weight: hooks on the conv (attention maps,
        # pruning's and weight norm's pre-hooks that recompute the weight) would not run
        if use_fast_path(a) and not has_forward_hooks(gg[0]):
            return cpu_kernels.regrouped_relations(gg[0].weight.flatten(1), a, b, a_grid,
                                                   b_grid)
        if a_grid is a and b_grid is b:  # the channel branch: one C x C product
            rel_out = torch.bmm(a.transpose(1, 2), b)
            rel_in = rel_out
        else:
            rel_in = torch.bmm(a.transpose(1, 2), b_grid)
            rel_out = torch.bmm(a_grid.transpose(1, 2), b)
        joint = torch.cat([rel_in.transpose(1, 2), rel_out], dim=1)
        return gg[0](joint.unsqueeze(3)).squeeze(3)

    def spatial_logits(self, x):
        """(N, 1, H, W): the spatial branch before its sigmoid."""
        n, _, h, w = x.shape
        theta = sequential_forward(self.theta_spatial, x)
        phi = sequential_forward(self.phi_spatial, x)
        theta_grid = adaptive_avg_pool2d(theta, self.spatial_size).flatten(2)
        phi_grid = adaptive_avg_pool2d(phi, self.spatial_size).flatten(2)
        rel = self._relations(self.gg_spatial, theta.flatten(2), phi.flatten(2),
                              theta_grid, phi_grid)
        rel = sequential_forward(self.gg_spatial[1:], rel.reshape(n, rel.shape[1], h, w))
        unary = sequential_forward(self.gx_spatial, x).mean(dim=1, keepdim=True)
        return sequential_forward(self.W_spatial, torch.cat([unary, rel], dim=1))

    def channel_logits(self, x):
        """(N, C, 1, 1): the channel branch before its sigmoid."""
        n, c = x.shape[:2]
        xc = adaptive_avg_pool2d(x, self.spatial_size).flatten(2).transpose(1, 2).unsqueeze(3)
        theta = sequential_forward(self.theta_channel, xc).squeeze(3)
        phi = sequential_forward(self.phi_channel, xc).squeeze(3)
        # every channel is a node of the grid here, so a node's grid is the nodes themselves
        rel = self._relations(self.gg_channel, theta, phi, theta, phi)
        rel = sequential_forward(self.gg_channel[1:], rel.unsqueeze(3))
        unary = sequential_forward(self.gx_channel, xc).mean(dim=1, keepdim=True)
        out = sequential_forward(self.W_channel, torch.cat([unary, rel], dim=1))
        return out.reshape(n, c, 1, 1)

    def forward(self, x):
        self.check_input(x)
        if self.use_spatial:
            x = torch.sigmoid(self.spatial_logits(x)) * x
        if self.use_channel:
            x = torch.sigmoid(self.channel_logits(x)) * x
        return x

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, spatial_size={self.spatial_size}, '
                f'use_spatial={self.use_spatial}, use_channel={self.use_channel}')

