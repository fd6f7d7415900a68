"""Bottleneck Attention Module.

Park, Woo, Lee, Kweon. "BAM: Bottleneck Attention Module", BMVC 2018.
Authors' code: https://github.com/Jongchan/attention-module (``MODELS/bam.py``; placed between
the stages of their ResNet in ``MODELS/model_resnet.py``).
"""
import torch
from mmcv.cnn import build_activation_layer
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..utils import norm_forward, reduced_channels
from ._common import ConvNormAct, build_norm


@MODELS.register_module()
class BAM(BaseAttention):
    """BAM: ``out = (1 + sigmoid(Mc(x) * Ms(x))) * x``.

    Channel branch Mc: GAP -> Linear C->C/r (bias) -> BN -> ReLU -> Linear C/r->C (bias).
    Spatial branch Ms: 1x1 conv C->C/r (bias) + BN + ReLU -> two 3x3 convs with dilation 4
    (padding 4, bias) + BN + ReLU -> 1x1 conv C/r->1 (bias).

    The authors' code multiplies the two branches (``fusion='product'``, the default: their
    released results come from it); the paper adds them (``fusion='sum'``).

    Differences from the authors' file, none of which changes the formula: it raises a
    NameError as shipped (a stray ``self.gate_activation`` line), and it average-pools with a
    square window of the map's height, which mis-pools non-square maps; here the channel
    branch pools over the whole H x W map. The channel branch's norm runs on a (N, C/r, 1, 1)
    view, so a BN there has the statistics of the authors' BatchNorm1d, any 2-D norm config
    (SyncBN, GN) works, and a batch of one in training uses the running statistics instead of
    raising (see :func:`mmattn.models.utils.norm_forward`).

    Args:
        in_channels: C.
        reduction: r; 16 in the authors' nets. The reduced width is ``max(1, C // r)``.
        dilation: the dilation (and padding) of the spatial branch's 3x3 convs; 4.
        num_dilated_convs: how many dilated 3x3 convs the spatial branch has; 2.
        fusion: ``'product'`` (authors' code) or ``'sum'`` (the paper) of Mc and Ms.
        norm_cfg: the norms of both branches (BN in the authors' code).
        act_cfg: the activations of both branches (ReLU).
        init_cfg: mmengine init config.
    """

    _abbr_ = 'bam'
    paper = 'BAM: Bottleneck Attention Module (Park et al., BMVC 2018)'
    code = 'https://github.com/Jongchan/attention-module'
    variants = {'paper_sum': dict(fusion='sum')}
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    placement = dict(stage_plugins=[
        dict(cfg=dict(type='mmattn.BAM', reduction=16, dilation=4),
             stages=(True, True, True, False))])
    map_taps = ('channel_fc2', 'spatial_out')
    maps_caption = ('the gate 1 + sigmoid(Mc Ms) averaged over channels; the spatial branch '
                    'Ms; the channel branch Mc')

    def attention_maps(self, inputs, taps, query):
        from mmattn.visualization import AttentionMaps, first_image
        mc = first_image(taps['channel_fc2'][-1].output).flatten()  # (C,)
        ms = first_image(taps['spatial_out'][-1].output)[0]  # (H, W)
        att = mc[:, None, None] * ms if self.fusion == 'product' else mc[:, None, None] + ms
        return AttentionMaps(
            spatial={'gate 1 + sigmoid(Mc Ms), mean over channels':
                     (1 + torch.sigmoid(att)).mean(0),
                     'spatial branch Ms (logits)': ms},
            channel={'channel branch Mc (logits)': mc})

    def __init__(self, in_channels, *, reduction=16, dilation=4, num_dilated_convs=2,
                 fusion='product', norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'),
                 init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        if fusion not in ('product', 'sum'):
            raise ValueError(f"BAM: fusion must be 'product' or 'sum', got {fusion!r}")
        self.reduction = reduction
        self.fusion = fusion
        hidden = reduced_channels(in_channels, reduction)
        # channel branch
        self.channel_fc1 = nn.Linear(in_channels, hidden)
        self.channel_norm = build_norm(norm_cfg, hidden)
        self.channel_act = build_activation_layer(act_cfg)
        self.channel_fc2 = nn.Linear(hidden, in_channels)
        # spatial branch
        self.spatial_reduce = ConvNormAct(in_channels, hidden, 1, bias=True, norm_cfg=norm_cfg,
                                          act_cfg=act_cfg)
        self.spatial_dilated = nn.Sequential(*[
            ConvNormAct(hidden, hidden, 3, padding=dilation, dilation=dilation, bias=True,
                        norm_cfg=norm_cfg, act_cfg=act_cfg) for _ in range(num_dilated_convs)
        ])
        self.spatial_out = nn.Conv2d(hidden, 1, 1, bias=True)

    def channel_attention(self, x):
        """Mc(x), shape (N, C, 1, 1)."""
        z = self.channel_fc1(x.mean((2, 3)))[:, :, None, None]
        z = self.channel_act(norm_forward(self.channel_norm, z))
        return self.channel_fc2(z.flatten(1))[:, :, None, None]

    def spatial_attention(self, x):
        """Ms(x), shape (N, 1, H, W)."""
        return self.spatial_out(self.spatial_dilated(self.spatial_reduce(x)))

    def forward(self, x):
        self.check_input(x)
        mc, ms = self.channel_attention(x), self.spatial_attention(x)
        att = mc * ms if self.fusion == 'product' else mc + ms
        return (1 + torch.sigmoid(att)) * x

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, reduction={self.reduction}, '
                f'fusion={self.fusion!r}')
