"""Global context (GC) block.

Cao, Xu, Lin, Wei, Hu. "GCNet: Non-local Networks Meet Squeeze-Excitation Networks and
Beyond", ICCV Workshops 2019. Authors' code: https://github.com/xvjiarui/GCNet
(``mmdet/ops/gcb/context_block.py``); mmcv's ``ContextBlock`` is the same block.
"""
import torch
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmengine.model import constant_init, kaiming_init
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..utils import DropInError, norm_forward, warn_reduced_width

_FUSIONS = {'channel_add': 'channel_add', 'add': 'channel_add',
            'channel_mul': 'channel_mul', 'mul': 'channel_mul'}


@MODELS.register_module()
class GlobalContext(BaseAttention):
    """GC block: attention pooling to one context vector, a bottleneck transform, fusion.

    context = sum over HxW of softmax(conv_mask(x)) * x (``'att'``; ``'avg'``: GAP);
    transform = 1x1 conv C -> C*ratio (bias) -> LayerNorm([C*ratio, 1, 1]) -> ReLU ->
    1x1 conv -> C (bias), the last conv zero-initialised; fusion ``channel_add``: x + t,
    ``channel_mul``: x * sigmoid(t) (both: multiply, then add, as the authors).

    The layer names are the authors' (and mmcv's), so their checkpoints load as they are; a bad
    argument raises :class:`~mmattn.models.utils.DropInError`, which is also the
    ``AssertionError`` mmcv's ``ContextBlock`` raises.

    Args:
        in_channels: C.
        ratio: bottleneck ratio; width ``int(C * ratio)`` as the authors, at least 1.
            The authors use 1/16 (and 1/4).
        pooling_type: ``'att'`` or ``'avg'``.
        fusion_types: a tuple (or list) of ``'channel_add'``/``'channel_mul'`` (or
            ``'add'``/``'mul'``); a bare string is refused, as by mmcv.
        norm_cfg: the transform's norm; ``LN`` (default) normalises over [C*ratio, 1, 1] as
            the authors' ``nn.LayerNorm([planes, 1, 1])``; any other mmcv norm is built by
            ``build_norm_layer`` (a BN then uses its running statistics at batch size 1).
        act_cfg: the transform's activation.
        init_cfg: mmengine init config.
    """

    _abbr_ = 'context_block'
    paper = ('GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond '
             '(Cao et al., ICCVW 2019)')
    code = 'https://github.com/xvjiarui/GCNet'
    variants = {
        'avg_pool': dict(pooling_type='avg'),
        'mul': dict(fusion_types=('channel_mul', )),
        'add_mul': dict(fusion_types=('channel_add', 'channel_mul')),
    }
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    placement = dict(plugins=[
        dict(cfg=dict(type='mmattn.GlobalContext', ratio=1. / 16, pooling_type='att',
                      fusion_types=('channel_add', )),
             stages=(False, True, True, True), position='after_conv3')])
    map_taps = ('conv_mask', )
    maps_caption = ('the context weights (softmax over positions of a 1x1 conv); the '
                    'channel_mul gate')

    def attention_maps(self, inputs, taps, query):
        from mmattn.visualization import AttentionMaps, first_image
        if self.pooling_type != 'att':
            return "pooling_type='avg' weighs every position the same (global average pooling)"
        weights = first_image(taps['conv_mask'][-1].output)[0]
        maps = AttentionMaps(spatial={'context weights (softmax over positions)':
                                      weights.flatten().softmax(0).reshape(weights.shape)})
        if self.channel_mul_conv is not None:
            context = self.spatial_pool(inputs[0])
            gate = torch.sigmoid(self._run(self.channel_mul_conv, context))
            maps.channel['channel_mul gate'] = first_image(gate).flatten()
        return maps

    def __init__(self, in_channels, ratio=1. / 16, pooling_type='att',
                 fusion_types=('channel_add', ), norm_cfg=dict(type='LN'),
                 act_cfg=dict(type='ReLU'), init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        # mmcv's ContextBlock asserts these: DropInError is also an AssertionError
        if pooling_type not in ('att', 'avg'):
            raise DropInError(f"GlobalContext: pooling_type must be 'att' or 'avg', "
                              f'got {pooling_type!r}')
        if not isinstance(fusion_types, (list, tuple)):
            # a bare string would otherwise be read letter by letter
            raise DropInError(f'GlobalContext: fusion_types must be a list or tuple, e.g. '
                              f"('channel_add', ), got {type(fusion_types).__name__} "
                              f'{fusion_types!r}')
        if not fusion_types or any(f not in _FUSIONS for f in fusion_types):
            raise DropInError(f'GlobalContext: fusion_types must be a non-empty tuple of '
                              f"'channel_add'/'channel_mul', got {fusion_types!r}")
        self.ratio = ratio
        width = int(in_channels * ratio)
        self.planes = max(1, width)
        if width < 1 or width > in_channels:
            warn_reduced_width('ratio', ratio, f'int({in_channels} * {ratio!r})', width,
                               self.planes, in_channels,
                               narrow_fix=f'ratio >= 1/{in_channels} keeps at least one '
                               f'channel.', wide_fix=f'ratio multiplies the width: a reduction '
                               f'of {ratio:g} is ratio=1/{ratio:g}.')
        self.pooling_type = pooling_type
        self.fusion_types = tuple(dict.fromkeys(_FUSIONS[f] for f in fusion_types))

        if pooling_type == 'att':
            self.conv_mask = nn.Conv2d(in_channels, 1, kernel_size=1)
            kaiming_init(self.conv_mask, mode='fan_in')
        else:
            # mmcv's module (no parameters, so the state dict is unchanged)
            self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.channel_add_conv = (self._transform(norm_cfg, act_cfg)
                                 if 'channel_add' in self.fusion_types else None)
        self.channel_mul_conv = (self._transform(norm_cfg, act_cfg)
                                 if 'channel_mul' in self.fusion_types else None)
        self.reset_authors_init()

    def _transform(self, norm_cfg, act_cfg):
        cfg = dict(norm_cfg)
        if cfg['type'] in ('LN', 'LayerNorm'):
            cfg.pop('type')
            cfg.pop('requires_grad', None)
            norm = nn.LayerNorm([self.planes, 1, 1], **cfg)
        else:
            norm = build_norm_layer(cfg, self.planes)[1]
        return nn.Sequential(
            nn.Conv2d(self.in_channels, self.planes, kernel_size=1), norm,
            build_activation_layer(act_cfg),
            nn.Conv2d(self.planes, self.in_channels, kernel_size=1))

    def reset_authors_init(self):
        for transform in (self.channel_add_conv, self.channel_mul_conv):
            if transform is not None:
                constant_init(transform[-1], 0)

    def spatial_pool(self, x):
        """(N, C, H, W) -> the context vector (N, C, 1, 1)."""
        n, c = x.shape[:2]
        if self.pooling_type == 'avg':
            return self.avg_pool(x)
        mask = self.conv_mask(x).flatten(2).softmax(dim=-1)  # (N, 1, HW)
        # bmm, not matmul: matmul's batched path holds extra full-size copies in training
        context = torch.bmm(x.flatten(2), mask.transpose(1, 2))  # (N, C, 1)
        return context.reshape(n, c, 1, 1)

    @staticmethod
    def _run(transform, context):
        conv1, norm, act, conv2 = transform
        return conv2(act(norm_forward(norm, conv1(context))))

    def forward(self, x):
        self.check_input(x)
        context = self.spatial_pool(x)
        out = x
        if self.channel_mul_conv is not None:
            out = out * torch.sigmoid(self._run(self.channel_mul_conv, context))
        if self.channel_add_conv is not None:
            out = out + self._run(self.channel_add_conv, context)
        return out

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, planes={self.planes}, '
                f'pooling_type={self.pooling_type!r}, fusion_types={self.fusion_types}')

