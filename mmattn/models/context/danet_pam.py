"""DANet's position attention module (PAM).

Fu, Liu, Tian, Li, Bao, Fang, Lu. "Dual Attention Network for Scene Segmentation", CVPR 2019.
Authors' code: https://github.com/junfu1115/DANet (``encoding/nn/da_att.py::PAM_Module``).
"""
import torch
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..utils import reduced_channels
from ..layers import softmax_attention


@MODELS.register_module()
class DANetPAM(BaseAttention):
    """PAM: out = gamma * (V softmax(Q^T K)^T) + x.

    Q, K: 1x1 convs C -> C/8 (bias); V: 1x1 conv C -> C (bias); the softmax runs over the keys
    of each query, with no scale; gamma is a learnable scalar starting at 0, so the module
    starts as the identity. The layer names are the authors', so their weights load.

    Memory: the (HW x HW) attention is never held unless ``lean=False``: it runs through
    :func:`~mmattn.models.layers.softmax_attention`, by blocks of queries or a fused kernel
    (Q and K are C/8 wide against C-wide values, which PyTorch's fused kernels take only as
    heads of V sharing zero-padded Q and K).

    Args:
        in_channels: C.
        reduction: query/key width ``C // reduction`` (the authors' 8), at least 1. Used only
            when ``key_channels`` is not given.
        key_channels: query/key width, given directly (a positive int), as mmseg's ``PAM``
            takes it (``pam_channels``); None (default): ``C // reduction``.
        lean: False computes the attention matrix explicitly (reference path).
        init_cfg: mmengine init config.
    """

    _abbr_ = 'pam'
    paper = 'Dual Attention Network for Scene Segmentation (Fu et al., CVPR 2019)'
    code = 'https://github.com/junfu1115/DANet'
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    placement = dict(plugins=[
        dict(cfg=dict(type='mmattn.DANetPAM', reduction=8), stages=(False, False, False, True),
             blocks='last', position='after_block')])
    map_taps = ('query_conv', 'key_conv')
    maps_caption = 'softmax(q_p . k_j) of the query pixel p over every position j'

    def attention_maps(self, inputs, taps, query):
        from mmattn.visualization import AttentionMaps
        q, k = taps['query_conv'][-1].output[0], taps['key_conv'][-1].output[0]
        qy, qx = query.index(*q.shape[1:])
        row = (q[:, qy, qx].double() @ k.flatten(1).double()).softmax(dim=-1)
        return AttentionMaps(query={'attention of the query pixel': row.reshape(k.shape[1:])})

    def __init__(self, in_channels, *, reduction=8, key_channels=None, lean=True, init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        if key_channels is None:
            if isinstance(reduction, bool) or not isinstance(reduction, (int, float)) \
                    or not reduction > 0:
                raise ValueError(f'DANetPAM: reduction must be a positive number, '
                                 f'got {reduction!r}')
            key_channels = reduced_channels(in_channels, reduction)
        elif isinstance(key_channels, bool) or not isinstance(key_channels, int) \
                or key_channels < 1:
            raise ValueError(f'DANetPAM: key_channels must be a positive int (the query/key '
                             f'width), got {key_channels!r}')
        self.reduction = reduction
        self.lean = lean
        self.key_channels = key_channels
        self.query_conv = nn.Conv2d(in_channels, self.key_channels, 1)
        self.key_conv = nn.Conv2d(in_channels, self.key_channels, 1)
        self.value_conv = nn.Conv2d(in_channels, in_channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.reset_authors_init()

    def reset_authors_init(self):
        with torch.no_grad():
            self.gamma.zero_()

    def forward(self, x):
        self.check_input(x)
        n, c, h, w = x.shape
        q = self.query_conv(x).flatten(2).transpose(1, 2)  # (N, HW, C/8)
        k = self.key_conv(x).flatten(2).transpose(1, 2)
        v = self.value_conv(x).flatten(2).transpose(1, 2)  # (N, HW, C)
        # values first, as the authors and mmseg: the result lies channels-first in memory
        out = softmax_attention(q, k, v, 1.0, lean=self.lean, values_first=True)
        return self.gamma * out.transpose(1, 2).reshape(n, c, h, w) + x

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, key_channels={self.key_channels}, '
                f'lean={self.lean}')
