"""ANN's head, built from mmattn's AFNB and APNB: mmseg's ``ANNHead``.

Zhu, Xu, Bai, Huang, Bai. "Asymmetric Non-local Neural Networks for Semantic Segmentation",
ICCV 2019. Authors' code: https://github.com/MendelXu/ANN. mmseg's head:
``mmseg/models/decode_heads/ann_head.py`` (mmsegmentation 1.2.2).
"""
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead

from mmattn.registry import MODELS
from ..context import AFNBlock, APNBlock
from ..utils import DropInError
from ._base import AttnHeadMixin


@MODELS.register_module()
class AttnANNHead(AttnHeadMixin, BaseDecodeHead):
    """mmseg's ``ANNHead`` with mmattn's :class:`AFNBlock` and :class:`APNBlock`.

    Two backbone outputs in (``in_channels=[low, high]``, ``in_index`` of two, e.g. ResNet's
    stages 3 and 4): the AFNB fuses them (high-level pixels attend to the pyramid-pooled
    low-level map; out width ``high``), then the head's dropout, ``bottleneck`` (3x3
    ConvModule to ``channels``), the APNB (self-attention to its own pyramid-pooled map) and
    ``conv_seg``. Attention keys are ``project_channels`` wide, scaled by its ``**-0.5``.

    Checkpoints: mmseg's ``fusion.stages.0.*`` and ``context.stages.0.*`` load into
    ``fusion.*`` and ``context.*``; the other keys are the same.

    Training differs from mmseg's in one respect that does not change any output or loss: the
    APNB's shared key/query projection runs once per step here, twice in mmseg, whose BN
    therefore updates its running statistics twice per step (and counts two batches).

    Args:
        project_channels: width of the key/query/value projections (mmseg's configs: 256).
        query_scales: only ``(1, )`` (mmseg's default and configs). mmseg 1.2.2's blocks fail
            at forward for a query scale above 1, and several scales would need one attention
            stage each, which the blocks do not have.
        key_pool_scales: the pyramid's bins per side for keys and values.
        **kwargs: mmseg's ``BaseDecodeHead`` arguments; ``input_transform`` is
            ``'multiple_select'``, as in mmseg. ``conv_cfg`` reaches the convs that mmseg
            builds with it (the projections with a norm and the fusion convs of both blocks,
            and ``bottleneck``); the value and output projections are plain 1x1 convs in both.
    """

    _mmseg_head = 'ANNHead'
    _mmseg_keys = (
        ('fusion.stages.0.', 'fusion.'),
        ('context.stages.0.', 'context.'),
    )

    def __init__(self, project_channels, query_scales=(1, ), key_pool_scales=(1, 3, 6, 8),
                 **kwargs):
        in_channels = kwargs.get('in_channels')
        if not (isinstance(in_channels, (list, tuple)) and len(in_channels) == 2):
            # mmseg's ANNHead asserts this (and BaseDecodeHead that it is a list)
            raise DropInError(
                f'AttnANNHead: in_channels must be the channels of two backbone outputs, '
                f'[low, high] (e.g. [1024, 2048] for ResNet-50 stages 3 and 4), with in_index '
                f'selecting them (e.g. [2, 3]); got in_channels={in_channels!r}')
        if tuple(query_scales) != (1, ):
            raise ValueError(
                f'AttnANNHead: query_scales={tuple(query_scales)} is not supported, only (1,): '
                f'mmseg 1.2.2\'s ANNHead fails at forward for a query scale above 1, and '
                f'mmattn\'s AFNBlock/APNBlock have one attention stage each.')
        super().__init__(input_transform='multiple_select', **kwargs)
        low_in_channels, high_in_channels = self.in_channels
        self.project_channels = project_channels
        self.query_scales = tuple(query_scales)
        self.key_pool_scales = tuple(key_pool_scales)
        # mmseg's blocks have no dropout of their own (the head's runs after the fusion and in
        # cls_seg); their convs before a norm have a bias only without a norm ('auto')
        blocks = dict(key_channels=project_channels, value_channels=project_channels,
                      pool_sizes=self.key_pool_scales, dropout=0., norm_conv_bias='auto',
                      conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        self.fusion = AFNBlock(high_in_channels, low_in_channels=low_in_channels,
                               out_channels=high_in_channels, **blocks)
        self.bottleneck = ConvModule(
            high_in_channels, self.channels, 3, padding=1, conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        self.context = APNBlock(self.channels, out_channels=self.channels, **blocks)

    def forward(self, inputs):
        """Logits at the high-level map's size."""
        low_feats, high_feats = self._checked_inputs(inputs)
        output = self.fusion(low_feats, high_feats)
        if self.dropout is not None:  # mmseg calls it unconditionally: dropout_ratio=0 fails
            output = self.dropout(output)
        output = self.bottleneck(output)
        output = self.context(output)
        return self.cls_seg(output)
