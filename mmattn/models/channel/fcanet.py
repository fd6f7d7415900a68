"""FcaNet: multi-spectral channel attention.

Qin, Zhang, Wu, Li. "FcaNet: Frequency Channel Attention Networks", ICCV 2021.
Authors' code: https://github.com/cfzd/FcaNet (``model/layer.py::MultiSpectralAttentionLayer``).
"""
import math

import torch
from mmcv.cnn import build_activation_layer
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..layers import adaptive_avg_pool2d
from ..utils import reduced_channels

# The authors' frequency rankings, as (u, v) indices on a 7x7 DCT grid (u along H, v along W):
# 'top' is their ranking of single frequencies by ImageNet accuracy, 'low' runs from the lowest
# frequencies up, 'bot' is the worst of the ranking. 'topN' uses the first N pairs.
_FREQS = {
    'top': ([0, 0, 6, 0, 0, 1, 1, 4, 5, 1, 3, 0, 0, 0, 3, 2,
             4, 6, 3, 5, 5, 2, 6, 5, 5, 3, 3, 4, 2, 2, 6, 1],
            [0, 1, 0, 5, 2, 0, 2, 0, 0, 6, 0, 4, 6, 3, 5, 2,
             6, 3, 3, 3, 5, 1, 1, 2, 4, 2, 1, 1, 3, 0, 5, 3]),
    'low': ([0, 0, 1, 1, 0, 2, 2, 1, 2, 0, 3, 4, 0, 1, 3, 0,
             1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4],
            [0, 1, 0, 1, 2, 0, 1, 2, 2, 3, 0, 0, 4, 3, 1, 5,
             4, 3, 2, 1, 0, 6, 5, 4, 3, 2, 1, 0, 6, 5, 4, 3]),
    'bot': ([6, 1, 3, 3, 2, 4, 1, 2, 4, 4, 5, 1, 4, 6, 2, 5,
             6, 1, 6, 2, 2, 4, 3, 3, 5, 5, 6, 2, 5, 5, 3, 6],
            [6, 4, 4, 6, 6, 3, 1, 4, 4, 5, 6, 5, 2, 2, 5, 1,
             4, 3, 5, 0, 3, 1, 1, 2, 4, 2, 1, 1, 5, 3, 3, 3]),
}


def frequency_indices(method: str):
    """The (u, v) frequencies on the 7x7 grid of ``'top16'``, ``'low4'``, ``'bot32'``..."""
    kind, num = method[:3], method[3:]
    if kind not in _FREQS or not num.isdigit() or int(num) not in (1, 2, 4, 8, 16, 32):
        raise ValueError(f'FcaNet: freq_sel_method must be top/low/bot followed by '
                         f'1, 2, 4, 8, 16 or 32, got {method!r}')
    us, vs = _FREQS[kind]
    return list(zip(us[:int(num)], vs[:int(num)]))


def dct_basis_1d(pos: int, freq: int, length: int) -> float:
    """The orthonormal DCT-II basis function ``freq`` at position ``pos`` of ``length``."""
    value = math.cos(math.pi * freq * (pos + 0.5) / length) / math.sqrt(length)
    return value * math.sqrt(2) if freq else value


def multi_spectral_basis(channels: int, size, freqs) -> torch.Tensor:
    """(C, h, w) basis: channel group i gets the 2-D DCT basis of frequency ``freqs[i]``.

    Frequencies are indices on a 7x7 grid and are scaled by ``h // 7`` and ``w // 7`` so that a
    larger basis samples the same frequencies (the authors': (2, 2) at 14x14 is (1, 1) at 7x7).
    Channels are split into ``len(freqs)`` contiguous groups, as the authors split them when C
    is a multiple of the number of frequencies (they require it); otherwise channel c takes
    frequency ``c * k // C`` with k = min(len(freqs), C), so groups differ by at most one
    channel and fewer channels than frequencies take the best-ranked ones.
    """
    h, w = size
    k = min(len(freqs), channels)
    planes = []
    for u, v in freqs[:k]:
        u, v = u * (h // 7), v * (w // 7)
        col = torch.tensor([dct_basis_1d(t, u, h) for t in range(h)], dtype=torch.float64)
        row = torch.tensor([dct_basis_1d(t, v, w) for t in range(w)], dtype=torch.float64)
        planes.append(col[:, None] * row[None, :])
    group = torch.tensor([c * k // channels for c in range(channels)])
    return torch.stack(planes)[group].float()


@MODELS.register_module()
class FcaNet(BaseAttention):
    """Multi-spectral attention: DCT pooling -> Linear C->C/r -> ReLU -> Linear C/r->C -> sigmoid.

    Channel c's descriptor is ``sum_{h,w} x[c, h, w] * basis[c, h, w]`` with a fixed 2-D DCT
    basis (a buffer, not a parameter) of the channel's frequency; the MLP has no biases.

    The basis has a fixed size per stage: the authors use 56, 28, 14, 7 in ResNet-50's four
    stages, in classification and in their detection and segmentation models alike. An input
    of another size is average-pooled adaptively to the basis size first (their code does the
    same). Give one plugin entry per stage with that stage's ``dct_size``.

    Args:
        in_channels: C.
        reduction: r (16). The reduced width is ``max(1, C // r)``.
        dct_size: int or (h, w), the basis size (default 7); at least 7, the grid the
            frequencies are chosen on.
        freq_sel_method: ``'top16'`` (the authors' default), or top/low/bot with 1, 2, 4, 8,
            16 or 32 frequencies.
        act_cfg: the MLP's activation (ReLU).
        gate_cfg: the gate's activation (sigmoid).
        init_cfg: mmengine init config.
    """

    _abbr_ = 'fca'
    paper = 'FcaNet: Frequency Channel Attention Networks (Qin et al., ICCV 2021)'
    code = 'https://github.com/cfzd/FcaNet'
    variants = {
        'size14': dict(dct_size=14),
        'low16': dict(freq_sel_method='low16'),
    }
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    # DCT sizes 56/28/14/7: the stage sizes of a 224x224 image, the authors' setting
    placement = dict(plugins=[
        dict(cfg=dict(type='mmattn.FcaNet', dct_size=size, freq_sel_method='top16',
                      reduction=16),
             stages=tuple(i == stage for i in range(4)), position='after_conv3')
        for stage, size in enumerate((56, 28, 14, 7))])
    channel_gates = {'channel gate': 'gate'}
    maps_caption = 'channel weights: the output of the gate (sigmoid), one per channel'

    def __init__(self, in_channels, *, reduction=16, dct_size=7, freq_sel_method='top16',
                 act_cfg=dict(type='ReLU'), gate_cfg=dict(type='Sigmoid'), init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        dh, dw = (dct_size, dct_size) if isinstance(dct_size, int) else dct_size
        if min(dh, dw) < 7:
            raise ValueError(f'FcaNet: dct_size must be at least 7 (the frequencies are '
                             f'indices on a 7x7 grid), got {dct_size!r}')
        self.dct_size = (int(dh), int(dw))
        self.reduction = reduction
        self.freq_sel_method = freq_sel_method
        freqs = frequency_indices(freq_sel_method)
        self.register_buffer('dct_basis', multi_spectral_basis(in_channels, self.dct_size,
                                                              freqs))
        rd = reduced_channels(in_channels, reduction)
        self.fc1 = nn.Linear(in_channels, rd, bias=False)
        self.act = build_activation_layer(act_cfg)
        self.fc2 = nn.Linear(rd, in_channels, bias=False)
        self.gate = build_activation_layer(gate_cfg)

    def dct_pool(self, x):
        """(N, C, H, W) -> (N, C): each channel's DCT coefficient of ``x`` adaptively
        average-pooled to the basis size (the authors' pooling, then their weighted sum)."""
        return (adaptive_avg_pool2d(x, self.dct_size) * self.dct_basis).sum((2, 3))

    def forward(self, x):
        self.check_input(x)
        y = self.dct_pool(x)
        g = self.gate(self.fc2(self.act(self.fc1(y))))
        return x * g[:, :, None, None]

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, reduction={self.reduction}, '
                f'dct_size={self.dct_size}, freq_sel_method={self.freq_sel_method!r}')

