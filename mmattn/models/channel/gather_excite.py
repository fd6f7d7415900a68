"""Gather-Excite.

Hu, Shen, Albanie, Sun, Vedaldi. "Gather-Excite: Exploiting Feature Context in Convolutional
Neural Networks", NeurIPS 2018.
Authors' code: https://github.com/hujie-frank/GENet (Caffe: ``models/RN50-GEPF.prototxt`` for
GE-theta-minus, ``RN50-GEP.prototxt`` for GE-theta, ``RN50-GEPP.prototxt`` for GE-theta-plus; the
extent-8 forms are drawn in the repository's ``figures/GEPF8.jpg`` and ``GEP8.jpg``).
"""
import math
from typing import Optional

import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_norm_layer
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..layers import adaptive_avg_pool2d
from ..utils import norm_forward, reduced_channels


@MODELS.register_module()
class GatherExcite(BaseAttention):
    """Gather-Excite: gather context over an extent, excite with a sigmoid gate, x * g.

    Variants (``variant``):

    - ``'theta-minus'`` (GE-θ⁻, default): parameter-free. Global extent: GAP -> sigmoid.
    - ``'theta'`` (GE-θ): global extent: a depthwise conv whose kernel covers the whole feature
      map (no bias) -> BN -> sigmoid.
    - ``'theta-plus'`` (GE-θ⁺): that depthwise conv -> BN -> ReLU -> 1x1 conv C->C/r (bias) ->
      ReLU -> 1x1 conv C/r->C (bias) -> sigmoid.

    Extent (``extent=e``, a power of two; ``None`` is the global extent): gather over e x e
    neighbourhoods to a ceil(H/e) x ceil(W/e) map, then upsample the gate back to H x W by
    nearest-neighbour interpolation. θ⁻ gathers with an average pool of kernel 2e-1, stride e
    (padding e-1, padded cells not counted); θ and θ⁺ with log2(e) depthwise 3x3 convs of stride
    2 (no bias), each followed by BN, with ReLU between them (the authors' figures).

    The global depthwise conv needs a fixed kernel size, ``feat_size``. The authors' kernels are
    the feature sizes of their 224x224 ImageNet inputs: 56, 28, 14, 7 in ResNet-50's four
    stages. An input of another size is first average-pooled adaptively to ``feat_size`` (as
    FcaNet's authors do for detection), so each tap weighs the mean of its region of the map;
    at the configured size this is exactly the authors' layer.

    Args:
        in_channels: C.
        variant: ``'theta-minus'``, ``'theta'`` or ``'theta-plus'``.
        extent: ``None`` (global) or e in 2, 4, 8, ...
        feat_size: int or (h, w), the global depthwise kernel of θ/θ⁺ (default 7; set the
            stage's size, 56/28/14/7, to match the authors' ResNet-50).
        reduction: r of θ⁺'s excite MLP (16 in the authors' prototxt). The reduced width is
            ``max(1, C // r)``.
        norm_cfg: the norms after the gather convs.
        act_cfg: the activations between gather convs and in θ⁺'s MLP.
        gate_cfg: the gate's activation (sigmoid).
        init_cfg: mmengine init config.
    """

    _abbr_ = 'ge'
    paper = ('Gather-Excite: Exploiting Feature Context in Convolutional Neural Networks '
             '(Hu et al., NeurIPS 2018)')
    code = 'https://github.com/hujie-frank/GENet'
    variants = {
        'theta': dict(variant='theta'),
        'theta-plus': dict(variant='theta-plus'),
        'theta-minus-e8': dict(extent=8),
        'theta-e8': dict(variant='theta', extent=8),
        'theta-plus-e2': dict(variant='theta-plus', extent=2),
        'theta-size14': dict(variant='theta', feat_size=14),
    }
    _VARIANTS = ('theta-minus', 'theta', 'theta-plus')
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    placement = dict(plugins=[
        dict(cfg=dict(type='mmattn.GatherExcite', variant='theta-minus'),
             stages=(True, True, True, True), position='after_conv3')])
    map_taps = ('gate', )
    maps_caption = ('channel weights (global extent) or the gate averaged over channels '
                    '(extent e)')

    def attention_maps(self, inputs, taps, query):
        from mmattn.visualization import AttentionMaps, first_image
        if not taps.get('gate'):
            return 'its gate did not run as a module'
        g = first_image(taps['gate'][-1].output)  # (C, h, w): 1 x 1 for the global extent
        if g.shape[-2:] == (1, 1):
            return AttentionMaps(channel={'channel gate': g.flatten()})
        return AttentionMaps(
            spatial={f'gate (extent {self.extent}), mean over channels': g.mean(0)})

    def __init__(self, in_channels, *, variant='theta-minus', extent: Optional[int] = None,
                 feat_size=7, reduction=16, norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'),
                 gate_cfg=dict(type='Sigmoid'), init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        if variant not in self._VARIANTS:
            raise ValueError(f'GatherExcite: variant must be one of {self._VARIANTS}, '
                             f'got {variant!r}')
        if extent is not None and (not isinstance(extent, int) or extent < 2
                                   or extent & (extent - 1)):
            raise ValueError(f'GatherExcite: extent must be None (global) or a power of two '
                             f'>= 2, got {extent!r}')
        self.variant = variant
        self.extent = extent
        self.reduction = reduction
        self.feat_size = None
        if variant != 'theta-minus':
            if extent is None:
                fh, fw = (feat_size, feat_size) if isinstance(feat_size, int) else feat_size
                if min(fh, fw) < 1:
                    raise ValueError(f'GatherExcite: feat_size must be positive, '
                                     f'got {feat_size!r}')
                self.feat_size = (int(fh), int(fw))
                convs = [nn.Conv2d(in_channels, in_channels, self.feat_size,
                                   groups=in_channels, bias=False)]
            else:
                convs = [nn.Conv2d(in_channels, in_channels, 3, stride=2, padding=1,
                                   groups=in_channels, bias=False)
                         for _ in range(int(math.log2(extent)))]
            self.gather_convs = nn.ModuleList(convs)
            self.gather_norms = nn.ModuleList(
                [build_norm_layer(norm_cfg, in_channels)[1] for _ in convs])
            self.act = build_activation_layer(act_cfg)
        if variant == 'theta-plus':
            rd = reduced_channels(in_channels, reduction)
            self.fc1 = nn.Conv2d(in_channels, rd, 1, bias=True)
            self.fc2 = nn.Conv2d(rd, in_channels, 1, bias=True)
        self.gate = build_activation_layer(gate_cfg)

    def _gather(self, x):
        if self.variant == 'theta-minus':
            if self.extent is None:
                return x.mean((2, 3), keepdim=True)
            e = self.extent
            return F.avg_pool2d(x, 2 * e - 1, stride=e, padding=e - 1,
                                count_include_pad=False)
        y = adaptive_avg_pool2d(x, self.feat_size) if self.extent is None else x
        last = len(self.gather_convs) - 1
        for i, (conv, norm) in enumerate(zip(self.gather_convs, self.gather_norms)):
            y = norm_forward(norm, conv(y))
            if i != last or self.variant == 'theta-plus':
                y = self.act(y)
        if self.variant == 'theta-plus':
            y = self.fc2(self.act(self.fc1(y)))
        return y

    def forward(self, x):
        self.check_input(x)
        g = self.gate(self._gather(x))
        if self.extent is not None:
            # sigmoid before upsampling: the same values as after, on a map e^2 times smaller
            g = F.interpolate(g, size=x.shape[2:], mode='nearest')
        return x * g

    def extra_repr(self):
        s = f'in_channels={self.in_channels}, variant={self.variant!r}, extent={self.extent}'
        if self.feat_size is not None:
            s += f', feat_size={self.feat_size}'
        return s
