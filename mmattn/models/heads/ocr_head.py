"""OCRNet's head, built from mmattn's object context: mmseg's ``OCRHead``.

Yuan, Chen, Wang. "Object-Contextual Representations for Semantic Segmentation", ECCV 2020.
Authors' code: https://github.com/HRNet/HRNet-Semantic-Segmentation (branch HRNet-OCR) and
https://github.com/openseg-group/openseg.pytorch. mmseg's head:
``mmseg/models/decode_heads/ocr_head.py`` (mmsegmentation 1.2.2).
"""
from typing import List

from mmseg.models.decode_heads.cascade_decode_head import BaseCascadeDecodeHead
from torch import Tensor

from mmattn.registry import MODELS
from ..context import ObjectContext
from ._base import AttnHeadMixin, _shape

CASCADE_HINT = (
    'OCRHead needs `type=\'CascadeEncoderDecoder\'` with num_stages=2 and an FCNHead first: '
    'model=dict(type=\'CascadeEncoderDecoder\', num_stages=2, decode_head=[dict(type=\'FCNHead\','
    ' num_classes=K, ...), dict(type=\'mmattn.AttnOCRHead\', num_classes=K, ...)]), as in '
    'mmseg\'s ocrnet configs (e.g. mmseg::ocrnet/ocrnet_r101-d8_4xb2-40k_cityscapes-512x1024.py)')


@MODELS.register_module()
class AttnOCRHead(AttnHeadMixin, BaseCascadeDecodeHead):
    """mmseg's ``OCRHead`` with mmattn's :class:`ObjectContext`.

    A cascade head: it refines the class logits of the head before it (``prev_output``, an
    FCNHead's in mmseg's ocrnet configs). The input goes through a 3x3 ConvModule to
    ``channels``; each class's soft region is the features averaged with the softmax over
    positions of its coarse logits; pixels attend to the regions (``ocr_channels`` wide
    embeddings, scaled by ``ocr_channels**-0.5``); ``cat[context, features]`` is fused by a
    1x1 ConvModule and classified by ``conv_seg``.

    Checkpoints: mmseg's ``bottleneck`` (the 3x3 conv) loads into ``ocr.mid_conv``;
    ``object_context_block.{query,key,value,out}_project`` into ``ocr.{f_pixel, f_object,
    f_down, f_up}``; ``object_context_block.bottleneck`` into ``ocr.bottleneck``.

    Args:
        ocr_channels: width of the pixel and region embeddings (mmseg's configs: 256).
        scale: the coarse logits are multiplied by it before their softmax. Only ``scale <= 1``
            runs: mmseg 1.2.2's OCRHead fails at forward for ``scale > 1`` (its query
            downsampling leaves a map of the wrong shape), so such a config is refused here.
        **kwargs: mmseg's ``BaseDecodeHead`` arguments (``conv_cfg`` reaches every conv of
            the object context block, as in mmseg).

    Used without the cascade (in an ``EncoderDecoder``, or as the first of the cascade's
    heads), it has no coarse logits to refine and says what the config needs.
    """

    _mmseg_head = 'OCRHead'
    _mmseg_keys = (
        ('bottleneck.', 'ocr.mid_conv.'),
        ('object_context_block.query_project.', 'ocr.f_pixel.'),
        ('object_context_block.key_project.', 'ocr.f_object.'),
        ('object_context_block.value_project.', 'ocr.f_down.'),
        ('object_context_block.out_project.', 'ocr.f_up.'),
        ('object_context_block.bottleneck.', 'ocr.bottleneck.'),
    )
    _config_key = ('model.decode_head[1].in_channels, the OCR stage of the cascade; the '
                   'FCNHead before it, model.decode_head[0], reads the same features')

    def __init__(self, ocr_channels, scale=1, **kwargs):
        super().__init__(**kwargs)
        if scale > 1:
            raise ValueError(
                f'AttnOCRHead: scale={scale} is not supported: mmseg 1.2.2\'s OCRHead fails at '
                f'forward for scale > 1 (its ObjectAttentionBlock downsamples the queries and '
                f'cannot restore the map). Use scale=1, as mmseg\'s ocrnet configs do.')
        self.ocr_channels = ocr_channels
        self.scale = scale
        # mmseg's block has no dropout of its own (the head's runs in cls_seg); its convs
        # before a norm have a bias only without a norm, which 'auto' gives
        self.ocr = ObjectContext(
            self.in_channels, num_classes=self.out_channels, mid_channels=self.channels,
            key_channels=ocr_channels, dropout=0., norm_conv_bias='auto',
            conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)

    def _check_prev_output(self, prev_output, feats: Tensor) -> None:
        name = type(self).__name__
        if not isinstance(prev_output, Tensor):
            got = ('no prev_output' if prev_output is None else
                   f'{type(prev_output).__name__} as prev_output (called as a '
                   f'non-cascade head, e.g. by an EncoderDecoder)')
            raise TypeError(f'{name} refines the class logits of a previous decode head, given '
                            f'as prev_output; it got {got}. {CASCADE_HINT}.')
        if prev_output.dim() != 4 or prev_output.shape[1] != self.out_channels:
            raise ValueError(
                f'{name}: prev_output must be the previous head\'s class logits, (N, '
                f'{self.out_channels}, H, W) for num_classes={self.num_classes}; got '
                f'{type(prev_output).__name__}{_shape(prev_output)}. Give the FCNHead before it '
                f'the same num_classes.')
        if prev_output.shape[0] != feats.shape[0] or prev_output.shape[2:] != feats.shape[2:]:
            raise ValueError(
                f'{name}: prev_output{_shape(prev_output)} does not match the features '
                f'{tuple(feats.shape)} in batch and size; the FCNHead before it must read the '
                f'same backbone output (the same in_index and input_transform).')

    def forward(self, inputs, prev_output=None) -> Tensor:
        """Refined logits at the feature map's size."""
        if not isinstance(prev_output, Tensor):
            self._check_prev_output(prev_output, None)
        x = self._checked_inputs(inputs)
        self._check_prev_output(prev_output, x)
        logits = prev_output if self.scale == 1 else prev_output * self.scale
        return self.cls_seg(self.ocr(x, logits))

    def loss(self, inputs, prev_output=None, batch_data_samples=None, train_cfg=None) -> dict:
        """Losses of the refined logits (``CascadeEncoderDecoder`` passes ``prev_output``)."""
        if not isinstance(prev_output, Tensor):
            self._check_prev_output(prev_output, None)
        return super().loss(inputs, prev_output, batch_data_samples, train_cfg)

    def predict(self, inputs, prev_output=None, batch_img_metas: List[dict] = None,
                test_cfg=None) -> Tensor:
        """Refined logits resized to the image (``CascadeEncoderDecoder`` passes
        ``prev_output``)."""
        if not isinstance(prev_output, Tensor):
            self._check_prev_output(prev_output, None)
        return super().predict(inputs, prev_output, batch_img_metas, test_cfg)
