"""Non-local block.

Wang, Girshick, Gupta, He. "Non-local Neural Networks", CVPR 2018.
Authors' code: https://github.com/facebookresearch/video-nonlocal-net (Caffe2,
``lib/models/nonlocal_helper.py``); https://github.com/facebookresearch/SlowFast
(``slowfast/models/nonlocal_helper.py``) is a faithful PyTorch port.
"""
import torch
from mmcv.cnn import build_norm_layer
from mmengine.model import constant_init, normal_init
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..utils import norm_forward, reduced_channels
from ..layers import concat_attention, softmax_attention

MODES = ('embedded_gaussian', 'gaussian', 'dot_product', 'concatenation')


@MODELS.register_module()
class NonLocal(BaseAttention):
    """Non-local block: y = f(theta(x), phi(x)) g(x); out = x + BN(conv_out(y)).

    theta, phi and g are 1x1 convs C -> C/2 (bias). The pairwise function f is one of

    - ``'embedded_gaussian'`` (the authors' default): softmax over keys of
      ``theta_i . phi_j * (C/2)^-0.5`` (the scale is the authors' ``USE_SCALE``);
    - ``'gaussian'``: softmax of ``x_i . x_j`` (no theta/phi convs, no scale);
    - ``'dot_product'``: ``theta_i . phi_j / M`` (M keys; no softmax);
    - ``'concatenation'``: ``ReLU(w . [theta_i, phi_j]) / M`` (w: 1x1 conv C -> 1 on the
      concatenated C/2 + C/2 features, no bias).

    With ``sub_sample`` the input is max-pooled (2x2, stride 2) *before* phi and g, as in the
    authors' code (a popular port pools after the convs instead). The pooling uses
    ``ceil_mode``: identical to the authors' on the even sizes they use, and odd or 1-pixel
    sides keep all their positions instead of dropping the last row or failing.

    The output conv (bias) is followed by a BN whose weight starts at 0, so the block starts
    as the identity (the authors' ``BN_INIT_GAMMA = 0``); without a norm the conv itself starts
    at 0. theta, phi, g and the output conv start from N(0, 0.01), biases 0 (the authors'
    ``CONV_INIT_STD``).

    Memory: the (HW x HW) affinity is never held unless ``lean=False``. ``'dot_product'`` is
    computed as ``theta (phi^T g) / M`` (linear in HW), the softmax forms by
    :func:`~mmattn.models.layers.softmax_attention` (blocks of queries or a fused kernel),
    ``'concatenation'`` by :func:`~mmattn.models.layers.concat_attention`.

    Args:
        in_channels: C.
        reduction: inner width ``C // reduction`` (the authors' ``dim_in / 2``), at least 1.
        mode: the pairwise function, one of ``MODES``.
        use_scale: the ``(C/2)^-0.5`` factor of the embedded Gaussian.
        sub_sample: max-pool the input before phi and g.
        lean: False computes the HW x HW matrix explicitly (reference path).
        norm_cfg: the norm after the output conv; None for none.
        init_cfg: mmengine init config.
    """

    _abbr_ = 'nonlocal_block'
    paper = 'Non-local Neural Networks (Wang et al., CVPR 2018)'
    code = 'https://github.com/facebookresearch/video-nonlocal-net'
    variants = {
        'gaussian': dict(mode='gaussian'),
        'dot_product': dict(mode='dot_product'),
        'concatenation': dict(mode='concatenation'),
        'sub_sample': dict(sub_sample=True),
    }
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    placement = dict(plugins=[
        dict(cfg=dict(type='mmattn.NonLocal', reduction=2, mode='embedded_gaussian',
                      use_scale=True, sub_sample=True),
             stages=(False, True, True, False), blocks=((), (1, 3), (1, 3, 5), ()),
             position='after_block')])
    map_taps = ('theta', 'phi')
    maps_caption = ('the pairwise weights f(query, j) of the query pixel over the positions j '
                    '(the max-pooled grid with sub_sample)')

    def attention_maps(self, inputs, taps, query):
        from mmattn.visualization import AttentionMaps
        x = inputs[0]
        qy, qx = query.index(*x.shape[2:])
        if self.mode == 'gaussian':
            src = self.pool(x) if self.pool is not None else x
            q, k = x[0, :, qy, qx], src[0]
        else:
            q, k = taps['theta'][-1].output[0, :, qy, qx], taps['phi'][-1].output[0]
        size = k.shape[1:]
        q, k = q.double(), k.flatten(1).double()  # (C',), (C', M)
        n_keys = k.shape[1]
        if self.mode == 'gaussian':
            row = (q @ k).softmax(dim=-1)
        elif self.mode == 'embedded_gaussian':
            row = ((q @ k) * (self.inter_channels**-0.5 if self.use_scale else 1.0)).softmax(-1)
        elif self.mode == 'dot_product':
            row = (q @ k) / n_keys
        else:  # concatenation: ReLU(w_theta . theta_i + w_phi . phi_j) / M
            w = self.concat_project.weight.flatten().double()
            row = torch.relu(w[:self.inter_channels] @ q + w[self.inter_channels:] @ k) / n_keys
        return AttentionMaps(query={'weights of the query pixel': row.reshape(size)})

    def __init__(self, in_channels, *, reduction=2, mode='embedded_gaussian', use_scale=True,
                 sub_sample=False, lean=True, norm_cfg=dict(type='BN'), init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        if mode not in MODES:
            raise ValueError(f'NonLocal: mode must be one of {MODES}, got {mode!r}')
        self.mode = mode
        self.reduction = reduction
        self.use_scale = use_scale
        self.sub_sample = sub_sample
        self.lean = lean
        self.inter_channels = reduced_channels(in_channels, reduction)
        inner = self.inter_channels

        self.g = nn.Conv2d(in_channels, inner, 1)
        if mode != 'gaussian':
            self.theta = nn.Conv2d(in_channels, inner, 1)
            self.phi = nn.Conv2d(in_channels, inner, 1)
        if mode == 'concatenation':
            self.concat_project = nn.Conv2d(2 * inner, 1, 1, bias=False)
        self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True) if sub_sample else None
        self.conv_out = nn.Conv2d(inner, in_channels, 1)
        self.norm = build_norm_layer(norm_cfg, in_channels)[1] if norm_cfg else None

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                normal_init(m, std=0.01)
        self.reset_authors_init()

    def reset_authors_init(self):
        if self.norm is not None:
            constant_init(self.norm, 0)
        else:
            constant_init(self.conv_out, 0)

    def _pairwise(self, x):
        """(N, C, H, W) -> y (N, H*W, C') by the pairwise function of ``self.mode``."""
        src = self.pool(x) if self.pool is not None else x
        g = self.g(src).flatten(2).transpose(1, 2)  # (N, M, C')
        if self.mode == 'gaussian':
            q = x.flatten(2).transpose(1, 2)
            k = src.flatten(2).transpose(1, 2)
            return softmax_attention(q, k, g, 1.0, lean=self.lean)
        q = self.theta(x).flatten(2).transpose(1, 2)  # (N, L, C')
        k = self.phi(src).flatten(2).transpose(1, 2)  # (N, M, C')
        n_keys = k.shape[1]
        if self.mode == 'embedded_gaussian':
            scale = self.inter_channels**-0.5 if self.use_scale else 1.0
            return softmax_attention(q, k, g, scale, lean=self.lean)
        if self.mode == 'dot_product':
            if self.lean:
                # (theta phi^T) g == theta (phi^T g): a C' x C' product instead of HW x HW
                return torch.matmul(q, torch.matmul(k.transpose(1, 2), g)) / n_keys
            return torch.matmul(torch.matmul(q, k.transpose(1, 2)) / n_keys, g)
        # concatenation: w . [theta_i, phi_j] = w_theta . theta_i + w_phi . phi_j
        w = self.concat_project.weight.flatten(1)  # (1, 2C')
        a = torch.matmul(q, w[:, :self.inter_channels].t())  # (N, L, 1)
        b = torch.matmul(k, w[:, self.inter_channels:].t())  # (N, M, 1)
        return concat_attention(a, b, g, lean=self.lean)

    def forward(self, x):
        self.check_input(x)
        n, _, h, w = x.shape
        y = self._pairwise(x).transpose(1, 2).reshape(n, self.inter_channels, h, w)
        y = self.conv_out(y)
        if self.norm is not None:
            y = norm_forward(self.norm, y)
        return x + y

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, mode={self.mode!r}, '
                f'inter_channels={self.inter_channels}, use_scale={self.use_scale}, '
                f'sub_sample={self.sub_sample}, lean={self.lean}')
