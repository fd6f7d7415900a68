"""Object-contextual representations (OCR).

Yuan, Chen, Wang. "Object-Contextual Representations for Semantic Segmentation", ECCV 2020.
Authors' code: https://github.com/HRNet/HRNet-Semantic-Segmentation (branch HRNet-OCR,
``lib/models/seg_hrnet_ocr.py``) and https://github.com/openseg-group/openseg.pytorch
(``lib/models/modules/spatial_ocr_block.py``).
"""
import torch
import torch.nn.functional as F
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..layers import softmax_attention
from ..utils import build_conv_module, conv_module_forward

_DEFAULT_NUM_CLASSES = 19  # Cityscapes, where OCR's headline numbers come from


@MODELS.register_module()
class ObjectContext(BaseAttention):
    """OCR's object context: pixels attend to soft object regions built from coarse logits.

    feats = ReLU(BN(conv3x3(x)))  (the ``mid_channels`` projection; skipped when it is None);
    soft object regions: r_k = sum_p softmax_p(logits_k)[p] * feats[:, p]  (softmax over the
    positions, one region vector per class);
    pixel-region relation: f_pixel(feats) and f_object(r), each 2 x [1x1 conv (no bias) + BN +
    ReLU] to ``key_channels``; w = softmax over the K regions of f_pixel^T f_object *
    key_channels^-0.5;
    context = f_up(w f_down(r)^T), f_down / f_up 1x1 conv (no bias) + BN + ReLU;
    out = Dropout2d(ReLU(BN(conv1x1(cat[context, feats])))).

    A head block, not a plugin: ``forward(feats, logits)`` takes the features and the coarse class
    logits (an auxiliary head's output, at the features' size) and returns ``out_channels``.
    The relation runs through :func:`~mmattn.models.layers.softmax_attention` with the
    authors' scale.

    Submodules, and their names in mmseg's ``OCRHead``: ``mid_conv`` -> ``bottleneck`` (with
    ``norm_conv_bias=False``: mmseg's 3x3 conv has no bias, HRNet-OCR's ``conv3x3_ocr`` has);
    ``f_pixel`` -> ``object_context_block.query_project``, ``f_object`` -> ``...key_project``,
    ``f_down`` -> ``...value_project``, ``f_up`` -> ``...out_project``, ``bottleneck`` ->
    ``object_context_block.bottleneck``. mmseg's ``SpatialGatherModule`` has no parameters.

    Args:
        in_channels: channels of the input features.
        num_classes: K, the channels of the coarse logits.
        mid_channels: width of the 3x3 projection before the block (HRNet-OCR's ``MID_CHANNELS``,
            mmseg's ``channels``: 512). ``None`` skips it: the block then runs on the input
            itself, as the authors' ``SpatialOCR_Module`` does.
        key_channels: width of the pixel/object embeddings (``KEY_CHANNELS``,
            mmseg's ``ocr_channels``: 256).
        out_channels: output width; ``None`` means the block's width (``mid_channels``, or
            ``in_channels`` without it).
        dropout: the Dropout2d rate after the fusion conv (HRNet-OCR: 0.05).
        norm_conv_bias: whether the 3x3 projection has a bias before its BN (HRNet-OCR: yes).
        conv_cfg: conv layer config of every conv (mmcv's ``build_conv_layer``; None: plain
            ``nn.Conv2d``), as mmseg's ``OCRHead`` passes its ``conv_cfg`` to all of them.
        norm_cfg / act_cfg: norm and activation of every conv.
        init_cfg: mmengine init config.
    """

    _abbr_ = 'ocr'
    paper = ('Object-Contextual Representations for Semantic Segmentation '
             '(Yuan et al., ECCV 2020)')
    code = 'https://github.com/HRNet/HRNet-Semantic-Segmentation/tree/HRNet-OCR'
    is_plugin = False
    variants = {'without_mid_conv': dict(mid_channels=None)}
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    no_placement = ('decode head (AttnOCRHead), which gives it the coarse class map it needs: '
                    'not a plugin')
    maps_caption = ("the query pixel's weights over the K object regions, each spread over "
                    "the image by its region's soft mask")

    def attention_maps(self, inputs, taps, query):
        from mmattn.models.context.apnb import conv_module_forward
        from mmattn.visualization import AttentionMaps
        feats, logits = inputs[0], inputs[1]
        if self.mid_conv is not None:
            feats = conv_module_forward(self.mid_conv, feats)
        qy, qx = query.index(*feats.shape[2:])
        regions = self.object_regions(feats, logits)
        q = self._seq(self.f_pixel, feats)[0, :, qy, qx].double()
        k = self._seq(self.f_object, regions)[0].flatten(1).double()  # (C, K)
        weights = (q @ k * self.key_channels**-0.5).softmax(0)  # over the K regions
        masks = logits[0].flatten(1).double().softmax(dim=1)  # (K, HW): each region's mask
        row = (weights @ masks).reshape(feats.shape[2:])
        return AttentionMaps(query={'attention of the query pixel via the object regions': row})

    def __init__(self, in_channels, *, num_classes=_DEFAULT_NUM_CLASSES, mid_channels=512,
                 key_channels=256, out_channels=None, dropout=0.05, norm_conv_bias=True,
                 conv_cfg=None, norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'),
                 init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'ObjectContext: num_classes must be a positive int, '
                             f'got {num_classes!r}')
        self.num_classes = num_classes
        self.mid_channels = mid_channels
        self.key_channels = key_channels
        width = in_channels if mid_channels is None else mid_channels
        self.out_channels = width if out_channels is None else out_channels
        cm = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.mid_conv = None if mid_channels is None else build_conv_module(
            in_channels, mid_channels, 3, padding=1, bias=norm_conv_bias, **cm)
        self.f_pixel = nn.Sequential(
            build_conv_module(width, key_channels, **cm),
            build_conv_module(key_channels, key_channels, **cm))
        self.f_object = nn.Sequential(
            build_conv_module(width, key_channels, **cm),
            build_conv_module(key_channels, key_channels, **cm))
        self.f_down = build_conv_module(width, key_channels, **cm)
        self.f_up = build_conv_module(key_channels, width, **cm)
        self.bottleneck = build_conv_module(2 * width, self.out_channels, **cm)
        self.dropout = nn.Dropout2d(dropout)

    @staticmethod
    def _seq(seq, x):
        for m in seq:
            x = conv_module_forward(m, x)
        return x

    def object_regions(self, feats, logits):
        """(N, C, K, 1): one feature vector per class, the features averaged with the class's
        softmax over positions as weights (the authors' SpatialGather_Module)."""
        probs = F.softmax(logits.flatten(2), dim=2)
        regions = torch.matmul(probs, feats.flatten(2).transpose(1, 2))
        return regions.transpose(1, 2).unsqueeze(3)

    def forward(self, feats, logits):
        self.check_input(feats, name='feats')
        self.check_input(logits, channels=self.num_classes, name='logits')
        if logits.shape[0] != feats.shape[0] or logits.shape[2:] != feats.shape[2:]:
            raise ValueError(
                f'ObjectContext: logits must match the features in batch and size, got '
                f'{tuple(logits.shape)} for features {tuple(feats.shape)}; resize the coarse '
                f'logits to the features first')
        if self.mid_conv is not None:
            feats = conv_module_forward(self.mid_conv, feats)
        n, _, h, w = feats.shape
        regions = self.object_regions(feats, logits)
        query = self._seq(self.f_pixel, feats).flatten(2).transpose(1, 2)
        key = self._seq(self.f_object, regions).flatten(2).transpose(1, 2)
        value = conv_module_forward(self.f_down, regions).flatten(2).transpose(1, 2)
        context = softmax_attention(query, key, value, self.key_channels**-0.5)
        context = context.transpose(1, 2).reshape(n, self.key_channels, h, w)
        context = conv_module_forward(self.f_up, context)
        out = conv_module_forward(self.bottleneck, torch.cat([context, feats], dim=1))
        return self.dropout(out)

    @classmethod
    def example_inputs(cls, in_channels, shape, **kwargs):
        """(features, coarse logits of the default 19 classes) at the same size."""
        n, _, h, w = shape
        return (torch.randn(n, in_channels, h, w, **kwargs),
                torch.randn(n, _DEFAULT_NUM_CLASSES, h, w, **kwargs))

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, num_classes={self.num_classes}, '
                f'mid_channels={self.mid_channels}, key_channels={self.key_channels}, '
                f'out_channels={self.out_channels}')
