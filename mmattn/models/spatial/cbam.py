"""Convolutional Block Attention Module.

Woo, Park, Lee, Kweon. "CBAM: Convolutional Block Attention Module", ECCV 2018.
Authors' code: https://github.com/Jongchan/attention-module (``MODELS/cbam.py``; the spatial
gate's BN is zero-initialised in ``MODELS/model_resnet.py``).
"""
import torch
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..utils import reduced_channels
from ._common import ZPoolGate, zero_norm_


@MODELS.register_module()
class CBAM(BaseAttention):
    """CBAM: a channel gate followed by a spatial gate.

    Channel gate: a shared MLP (Linear C->C/r with bias, ReLU, Linear C/r->C with bias) applied
    to the average-pooled and to the max-pooled vector; the two outputs are summed, passed
    through a sigmoid and rescale the channels. Spatial gate, on that result:
    ``cat[max over C, mean over C]`` -> 7x7 conv 2->1 (pad 3, no bias) -> BN (eps 1e-5,
    momentum 0.01) -> sigmoid -> rescale every position.

    The authors' ResNet init sets the spatial gate's BN weight to 0 (every ``bn`` weight whose
    key contains ``SpatialGate``), so their network starts with a constant spatial gate of
    sigmoid(0) = 0.5. :meth:`reset_authors_init` does it here.

    Args:
        in_channels: C.
        reduction: r; 16 in the authors' nets. The hidden width is ``max(1, C // r)``.
        kernel_size: the spatial gate's kernel (odd), 7 in the authors' code.
        pool_types: the pooled vectors fed to the shared MLP, from ``'avg'`` and ``'max'``.
        no_spatial: drop the spatial gate (the authors' ``no_spatial`` flag; channel gate only).
        norm_cfg: the spatial gate's norm (the authors' BN has eps 1e-5 and momentum 0.01).
        act_cfg: the MLP's activation.
        init_cfg: mmengine init config.
    """

    _abbr_ = 'cbam'
    paper = 'CBAM: Convolutional Block Attention Module (Woo et al., ECCV 2018)'
    code = 'https://github.com/Jongchan/attention-module'
    variants = {'no_spatial': dict(no_spatial=True)}
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    placement = dict(plugins=[dict(cfg=dict(type='mmattn.CBAM'), position='after_conv3')])
    map_taps = ('fc2', 'spatial_gate.conv')
    maps_caption = ('spatial gate (sigmoid of the 7x7 conv on [max, mean] over channels); '
                    'channel gate')

    def attention_maps(self, inputs, taps, query):
        from mmattn.models.utils import norm_forward
        from mmattn.visualization import AttentionMaps, first_image
        # fc2 runs once per pooled vector (avg, max); the channel gate is the sigmoid of the sum
        logits = sum(t.output for t in taps.get('fc2', []))
        maps = AttentionMaps(
            channel={'channel gate': first_image(torch.sigmoid(logits)).flatten()})
        if self.spatial_gate is not None:
            conv = taps['spatial_gate.conv'][-1].output
            gate = torch.sigmoid(norm_forward(self.spatial_gate.bn, conv))
            maps.spatial['spatial gate'] = first_image(gate)[0]
        return maps

    def __init__(self, in_channels, *, reduction=16, kernel_size=7, pool_types=('avg', 'max'),
                 no_spatial=False, norm_cfg=dict(type='BN', eps=1e-5, momentum=0.01),
                 act_cfg=dict(type='ReLU'), init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        pool_types = tuple(pool_types)
        if not pool_types or any(p not in ('avg', 'max') for p in pool_types):
            raise ValueError(f"CBAM: pool_types must be taken from ('avg', 'max'), "
                             f'got {pool_types!r}')
        self.reduction = reduction
        self.pool_types = pool_types
        self.no_spatial = no_spatial
        hidden = reduced_channels(in_channels, reduction)
        self.fc1 = nn.Linear(in_channels, hidden)
        self.act = build_activation_layer(act_cfg)
        self.fc2 = nn.Linear(hidden, in_channels)
        self.spatial_gate = None if no_spatial else ZPoolGate(kernel_size, norm_cfg)
        self.reset_authors_init()

    def reset_authors_init(self):
        if self.spatial_gate is not None:
            zero_norm_(self.spatial_gate.bn)

    def forward(self, x):
        self.check_input(x)
        logits = 0
        for pool in self.pool_types:
            # max pooling with indices scatters its gradient to the argmax (amax's backward
            # would build a full-size tie mask)
            v = x.mean((2, 3)) if pool == 'avg' else F.adaptive_max_pool2d(x, 1).flatten(1)
            logits = logits + self.fc2(self.act(self.fc1(v)))
        x = x * torch.sigmoid(logits)[:, :, None, None]
        if self.spatial_gate is not None:
            x = self.spatial_gate(x)
        return x

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, reduction={self.reduction}, '
                f'pool_types={self.pool_types}, no_spatial={self.no_spatial}')
