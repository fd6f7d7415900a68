"""Asymmetric Fusion Non-local Block (AFNB) of ANN.

Zhu, Xu, Bai, Huang, Bai. "Asymmetric Non-local Neural Networks for Semantic Segmentation",
ICCV 2019. Authors' code: https://github.com/MendelXu/ANN (``models/seg/utils/afnb.py``).
"""
import torch
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..layers import pyramid_pool, softmax_attention
from ..utils import build_conv_module, conv_module_forward


@MODELS.register_module()
class AFNBlock(BaseAttention):
    """ANN's asymmetric fusion non-local block: high-level pixels attend to low-level anchors.

    query = ReLU(BN(conv1x1(high)));  key = ReLU(BN(conv1x1(low)));  value = conv1x1(low) (bias);
    key and value pyramid-pooled (1, 3, 6, 8: 110 anchors); context = softmax(query^T key *
    key_channels^-0.5) value^T over the anchors; out_project 1x1 conv (bias) **zero-init**;
    out = Dropout2d(BN(conv1x1(cat[context, high])))  (no ReLU).

    A fusion block, not a plugin: ``forward(low_feats, high_feats)`` returns a map of
    ``out_channels`` at the high-level map's size; the low-level map may have any size. In ANN
    the low map is ResNet's stage 3 (1024 channels) and the high map stage 4 (2048), both at
    stride 8.

    Submodules, and their names in mmseg's ``ANNHead.fusion`` (``query_scales=(1,)``):
    ``query_project`` / ``key_project`` / ``value_project`` / ``out_project`` ->
    ``stages.0.<same name>``, ``bottleneck`` -> ``bottleneck``. mmseg's convs before a BN have
    no bias: build with ``norm_conv_bias=False`` to load its checkpoints.

    Args:
        in_channels: channels of the high-level map (the query side).
        low_in_channels: channels of the low-level map (key and value side). ``None`` means
            ``in_channels // 2`` (at least 1): ResNet's stage-3 to stage-4 ratio, as in ANN.
        key_channels: width of the query and key projections (authors: 256).
        value_channels: width of the value projection (authors: 256).
        out_channels: output width; ``None`` means ``in_channels`` (the authors' 2048).
        pool_sizes: the pyramid's bin counts per side.
        dropout: the Dropout2d rate after the fusion conv (authors: 0.05).
        norm_conv_bias: whether the convs followed by a BN have a bias, as in the authors' code
            (redundant before a batch norm; mmseg has none).
        conv_cfg: conv layer config (mmcv's ``build_conv_layer``; None: plain ``nn.Conv2d``)
            of the query and key projections and of the fusion conv. The value and output
            projections are plain 1x1 convs whatever it is, as in mmseg's ANNHead.
        norm_cfg / act_cfg: norm and activation of the projections; the fusion conv has the
            norm and no activation.
        init_cfg: mmengine init config.
    """

    _abbr_ = 'afnb'
    paper = ('Asymmetric Non-local Neural Networks for Semantic Segmentation '
             '(Zhu et al., ICCV 2019)')
    code = 'https://github.com/MendelXu/ANN'
    is_plugin = False
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    no_placement = ('decode head (AttnANNHead), fusing two backbone stages into its input: '
                    'a block of two inputs, not a plugin')
    maps_caption = ("the high-level query pixel's weights over the low-level map's pyramid "
                    'anchors, spread over their bins')

    def attention_maps(self, inputs, taps, query):
        from mmattn.models.context.apnb import conv_module_forward, pyramid_pool
        from mmattn.visualization import AttentionMaps, spread_over_pooling
        low, high = inputs[0], inputs[1]
        q = conv_module_forward(self.query_project, high)
        key = conv_module_forward(self.key_project, low)
        qy, qx = query.index(*q.shape[2:])
        anchors = pyramid_pool(key, self.pool_sizes)[0].double()  # (C, sum s^2)
        weights = (q[0, :, qy, qx].double() @ anchors * self.key_channels**-0.5).softmax(0)
        row = spread_over_pooling(weights, lambda z: pyramid_pool(z, self.pool_sizes),
                                  *key.shape[2:])
        return AttentionMaps(query={'attention of the query pixel over the low-level map': row})

    def __init__(self, in_channels, *, low_in_channels=None, key_channels=256, value_channels=256,
                 out_channels=None, pool_sizes=(1, 3, 6, 8), dropout=0.05, norm_conv_bias=True,
                 conv_cfg=None, norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'),
                 init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        self.low_in_channels = (self.default_low_channels(in_channels)
                                if low_in_channels is None else low_in_channels)
        self.key_channels = key_channels
        self.value_channels = value_channels
        self.out_channels = in_channels if out_channels is None else out_channels
        self.pool_sizes = tuple(pool_sizes)
        self.query_project = build_conv_module(in_channels, key_channels, bias=norm_conv_bias,
                                               conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                               act_cfg=act_cfg)
        self.key_project = build_conv_module(self.low_in_channels, key_channels,
                                             bias=norm_conv_bias, conv_cfg=conv_cfg,
                                             norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.value_project = nn.Conv2d(self.low_in_channels, value_channels, 1)
        self.out_project = nn.Conv2d(value_channels, self.out_channels, 1)
        self.bottleneck = build_conv_module(self.out_channels + in_channels, self.out_channels,
                                            bias=norm_conv_bias, conv_cfg=conv_cfg,
                                            norm_cfg=norm_cfg, act_cfg=None)
        self.dropout = nn.Dropout2d(dropout)
        self.reset_authors_init()

    @staticmethod
    def default_low_channels(in_channels):
        return max(1, in_channels // 2)

    def reset_authors_init(self):
        nn.init.zeros_(self.out_project.weight)
        nn.init.zeros_(self.out_project.bias)

    def forward(self, low_feats, high_feats):
        self.check_input(high_feats, name='high_feats')
        self.check_input(low_feats, channels=self.low_in_channels, name='low_feats')
        if low_feats.shape[0] != high_feats.shape[0]:
            raise ValueError(f'AFNBlock: low_feats and high_feats must have the same batch '
                             f'size, got {low_feats.shape[0]} and {high_feats.shape[0]}')
        n, _, h, w = high_feats.shape
        query = conv_module_forward(self.query_project, high_feats).flatten(2).transpose(1, 2)
        key = pyramid_pool(conv_module_forward(self.key_project, low_feats), self.pool_sizes)
        value = pyramid_pool(self.value_project(low_feats), self.pool_sizes)
        context = softmax_attention(query, key.transpose(1, 2), value.transpose(1, 2),
                                    self.key_channels**-0.5)
        context = context.transpose(1, 2).reshape(n, self.value_channels, h, w)
        context = self.out_project(context)
        out = conv_module_forward(self.bottleneck, torch.cat([context, high_feats], dim=1))
        return self.dropout(out)

    @classmethod
    def example_inputs(cls, in_channels, shape, **kwargs):
        """(low, high): the low-level map with the default ``in_channels // 2`` channels."""
        n, _, h, w = shape
        low = torch.randn(n, cls.default_low_channels(in_channels), h, w, **kwargs)
        high = torch.randn(n, in_channels, h, w, **kwargs)
        return low, high

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, low_in_channels={self.low_in_channels}, '
                f'key_channels={self.key_channels}, value_channels={self.value_channels}, '
                f'out_channels={self.out_channels}, pool_sizes={self.pool_sizes}')
