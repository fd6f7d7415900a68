"""Asymmetric Pyramid Non-local Block (APNB) of ANN.

Zhu, Xu, Bai, Huang, Bai. "Asymmetric Non-local Neural Networks for Semantic Segmentation",
ICCV 2019. Authors' code: https://github.com/MendelXu/ANN (``models/seg/utils/apnb.py``).
"""
import torch
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..layers import pyramid_pool, softmax_attention
from ..utils import build_conv_module, conv_module_forward


@MODELS.register_module()
class APNBlock(BaseAttention):
    """ANN's asymmetric pyramid non-local block: pixel-to-anchor non-local attention.

    key = query = ReLU(BN(conv1x1(x)))  (one projection, shared, ``key_channels`` wide);
    value = conv1x1(x) (bias)  (``value_channels`` wide);
    keys and values are adaptive-average-pooled to the pyramid ``pool_sizes`` (1, 3, 6, 8: 110
    anchors); context = softmax(query^T key * key_channels^-0.5) value^T, over the anchors;
    out_project: 1x1 conv (bias), weight and bias **initialised to 0**;
    out = Dropout2d(ReLU(BN(conv1x1(cat[context, x])))).

    The block is not residual; with ``out_channels == in_channels`` (the default) it keeps the
    input's shape and can be used as a plugin. The attention runs through
    :func:`~mmattn.models.layers.softmax_attention` with the authors' scale; the pyramid
    pooling is :func:`~mmattn.models.layers.pyramid_pool` (ONNX-exportable for any size).

    Submodules, and their names in mmseg's ``ANNHead.context`` (an APNB with
    ``query_scales=(1,)``): ``key_project`` -> ``stages.0.key_project``, ``query_project`` (the
    same module) -> ``stages.0.query_project``, ``value_project`` -> ``stages.0.value_project``,
    ``out_project`` -> ``stages.0.out_project``, ``bottleneck`` -> ``bottleneck``. mmseg's convs
    before a BN have no bias: build with ``norm_conv_bias=False`` to load its checkpoints.

    Args:
        in_channels: C.
        key_channels: width of the shared key/query projection (authors: 256).
        value_channels: width of the value projection (authors: 256).
        out_channels: output width; ``None`` means ``in_channels``. The context is projected
            back to ``in_channels`` before the concatenation, as in the authors' code (which
            only runs with ``out_channels == in_channels``).
        pool_sizes: the pyramid's bin counts per side.
        dropout: the Dropout2d rate after the fusion conv (authors: 0.05).
        norm_conv_bias: whether the convs followed by a BN have a bias, as in the authors' code.
            It is redundant before a batch norm; mmseg's ANNHead has none.
        conv_cfg: conv layer config (mmcv's ``build_conv_layer``; None: plain ``nn.Conv2d``)
            of the key projection and of the fusion conv. The value and output projections
            are plain 1x1 convs whatever it is, as in mmseg's ANNHead (which builds those two
            without a norm, as ``nn.Conv2d``).
        norm_cfg / act_cfg: norm and activation of the key projection and of the fusion conv.
        init_cfg: mmengine init config.

    The authors run the shared key/query projection twice per forward (its BN's running
    statistics are then updated twice per step); here it runs once. The outputs are the same.
    """

    _abbr_ = 'apnb'
    paper = ('Asymmetric Non-local Neural Networks for Semantic Segmentation '
             '(Zhu et al., ICCV 2019)')
    code = 'https://github.com/MendelXu/ANN'
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    no_placement = ("decode head (AttnANNHead, configs/ann_r50-d8_*), on the last stage's "
                    "output: ANN's pyramid non-local block has no backbone config")
    maps_caption = ("the query pixel's softmax weights over the pyramid anchors, each spread "
                    'over the positions its bin averages')

    def attention_maps(self, inputs, taps, query):
        from mmattn.models.context.apnb import conv_module_forward, pyramid_pool
        from mmattn.visualization import AttentionMaps, spread_over_pooling
        # query and key share one projection
        key = conv_module_forward(self.key_project, inputs[0])
        qy, qx = query.index(*key.shape[2:])
        anchors = pyramid_pool(key, self.pool_sizes)[0].double()  # (C, sum s^2)
        weights = (key[0, :, qy, qx].double() @ anchors * self.key_channels**-0.5).softmax(0)
        row = spread_over_pooling(weights, lambda z: pyramid_pool(z, self.pool_sizes),
                                  *key.shape[2:])
        return AttentionMaps(query={'attention of the query pixel (anchors spread)': row})

    def __init__(self, in_channels, *, key_channels=256, value_channels=256, out_channels=None,
                 pool_sizes=(1, 3, 6, 8), dropout=0.05, norm_conv_bias=True, conv_cfg=None,
                 norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'), init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        self.key_channels = key_channels
        self.value_channels = value_channels
        self.out_channels = in_channels if out_channels is None else out_channels
        self.pool_sizes = tuple(pool_sizes)
        self.key_project = build_conv_module(in_channels, key_channels, bias=norm_conv_bias,
                                             conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                             act_cfg=act_cfg)
        # the authors' f_query is their f_key; registering both names keeps their and mmseg's
        # state-dict layout
        self.query_project = self.key_project
        self.value_project = nn.Conv2d(in_channels, value_channels, 1)
        self.out_project = nn.Conv2d(value_channels, in_channels, 1)
        self.bottleneck = build_conv_module(2 * in_channels, self.out_channels,
                                            bias=norm_conv_bias, conv_cfg=conv_cfg,
                                            norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.dropout = nn.Dropout2d(dropout)
        self.reset_authors_init()

    def reset_authors_init(self):
        nn.init.zeros_(self.out_project.weight)
        nn.init.zeros_(self.out_project.bias)

    def forward(self, x):
        self.check_input(x)
        n, _, h, w = x.shape
        key = conv_module_forward(self.key_project, x)
        query = key.flatten(2).transpose(1, 2)
        key = pyramid_pool(key, self.pool_sizes).transpose(1, 2)
        value = pyramid_pool(self.value_project(x), self.pool_sizes).transpose(1, 2)
        context = softmax_attention(query, key, value, self.key_channels**-0.5)
        context = context.transpose(1, 2).reshape(n, self.value_channels, h, w)
        context = self.out_project(context)
        out = conv_module_forward(self.bottleneck, torch.cat([context, x], dim=1))
        return self.dropout(out)

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, key_channels={self.key_channels}, '
                f'value_channels={self.value_channels}, out_channels={self.out_channels}, '
                f'pool_sizes={self.pool_sizes}')

