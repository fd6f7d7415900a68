"""mmdet's ResNet and ResNeXt with plugins in every block type, in chosen blocks, and between
stages.

For detection configs: ``backbone=dict(type='mmattn.AttnResNet', depth=50, plugins=[...])``, or
``dict(type='mmattn.AttnResNeXt', depth=101, groups=32, base_width=4, plugins=[...])``.
"""
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck, ResNet
from mmdet.models.backbones.resnext import Bottleneck as XBottleneck
from mmdet.models.backbones.resnext import ResNeXt
from torch import nn

from mmattn.registry import MODELS
from .res_plugins import AttnResNetMixin, BasicBlockPluginMixin, BottleneckPluginMixin

_MAXPOOL_KEYS = ('kernel_size', 'stride', 'padding', 'ceil_mode')


class AttnBasicBlock(BasicBlockPluginMixin, BasicBlock):
    """mmdet's BasicBlock that takes plugins (see :class:`BasicBlockPluginMixin`)."""


class AttnBottleneck(BottleneckPluginMixin, Bottleneck):
    """mmdet's Bottleneck that takes plugins in chosen blocks."""


class AttnXBottleneck(BottleneckPluginMixin, XBottleneck):
    """mmdet's ResNeXt Bottleneck that takes plugins in chosen blocks.

    Its first two convs are ``groups * width_per_group`` wide, not ``planes``: plugins there
    get that width, as in mmdet's ResNeXt Bottleneck.
    """

    def plugin_channels(self, position):
        if position == 'after_conv1':
            return self.conv1.out_channels
        if position == 'after_conv2':
            return self.conv2.out_channels
        return self.planes * self.expansion


class MaxPoolCfgMixin(AttnResNetMixin):
    """:class:`AttnResNetMixin` with the keyword-only ``maxpool_cfg`` of :class:`AttnResNet`
    and :class:`AttnResNeXt` (mmdet's ResNet and ResNeXt build their stem's max-pool alike).
    """

    def __init__(self, *args, maxpool_cfg=None, **kwargs):
        super().__init__(*args, **kwargs)
        if maxpool_cfg is None:
            return
        # the max-pool has no parameters: replacing it leaves the state dict as it is
        name = type(self).__name__
        if not isinstance(maxpool_cfg, dict):
            raise TypeError(f'{name}: maxpool_cfg must be a dict of nn.MaxPool2d arguments, '
                            f'got {maxpool_cfg!r}')
        unknown = sorted(set(maxpool_cfg) - set(_MAXPOOL_KEYS))
        if unknown:
            raise ValueError(f'{name}: maxpool_cfg takes {_MAXPOOL_KEYS}, got unknown keys '
                             f'{unknown}')
        cfg = dict(kernel_size=3, stride=2, padding=1)
        cfg.update(maxpool_cfg)
        self.maxpool = nn.MaxPool2d(**cfg)


@MODELS.register_module()
class AttnResNet(MaxPoolCfgMixin, ResNet):
    """mmdet's ``ResNet`` with attention plugins anywhere.

    Takes every argument of ``mmdet.models.backbones.ResNet``, in its positional order
    (``AttnResNet(50, 3)`` is ``ResNet(50, 3)``: ``depth``, ``deep_stem``,
    ``avg_down``, ``frozen_stages``, ``norm_eval``, ``dcn``, ``with_cp``, ``init_cfg``, ...)
    and, without plugins, has its parameters, state-dict keys, initialisation and outputs, so
    ``init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')`` loads every
    weight but the attention ones. What it adds (keyword-only):

    Args:
        plugins (list[dict]): as in mmdet (``cfg``, ``position``, ``stages``), plus
            ``blocks``: ``None``/``'all'``, ``'last'``, ``'first'`` or one tuple of block
            indices per stage, e.g. ``blocks=((), (1, 3), (1, 3, 5), ())``. Positions:
            mmdet's ``after_conv1/2/3`` (in the residual branch) and ``after_block``: on the
            block's output, after the residual addition and ReLU (where Non-local's authors
            put it). Plugins also work on ResNet-18/34's BasicBlock: ``after_conv1`` follows
            its first conv + norm + ReLU, ``after_conv2`` and then ``after_conv3`` follow its
            second conv + norm, before the residual addition. All plugins at one position
            run, in list order. With ``with_cp`` the ``after_block`` plugins are
            checkpointed too.
        stage_plugins (list[dict]): ``dict(cfg=..., stages=(...))``: a module applied to a
            stage's output (``in_channels`` = its width), before the next stage and the
            backbone's outputs see it (BAM, residual attention). It is named
            ``layer{i}_attn`` and belongs to the stage whose output it refines.
        freeze_plugins (bool): whether ``frozen_stages`` freezes the attention modules of
            those stages too, as mmdet's ResNet does. Default False: the ResNet's own layers
            are frozen and the attention modules, which a plain ResNet checkpoint does not
            hold, train. Set True for a checkpoint that includes them.
        conv2_cfg (dict, optional): a registered conv-like layer in place of ``conv2`` of
            every block of the stages ``stage_with_conv2_cfg`` selects (one bool per stage;
            default: every stage), as ``dcn``/``stage_with_dcn`` put a deformable conv there:
            the Bottleneck's 3x3 conv (strided in a stage's first block), the BasicBlock's
            second conv. It is built with the replaced conv's arguments (``in_channels``,
            ``out_channels``, ``kernel_size``, ``stride``, ``padding``, ``dilation``,
            ``groups``, ``bias``) and the backbone's ``norm_cfg`` where it takes one, e.g.
            ``dict(type='mmattn.SKConv')`` (SKNet's unit; it brings its own norms and
            activations, so the block has no ``bn2``), or ``dict(type='mmattn.AttnConv2d',
            attention=dict(type='mmattn.SimAM'))`` (the conv, then SimAM, before ``bn2``).
            See :mod:`mmattn.models.backbones.conv_slot`.
        stage_with_conv2_cfg (tuple[bool], optional): the stages ``conv2_cfg`` goes in.
        conv1_cfg (dict, optional): as ``conv2_cfg``, for ``conv1`` of every BasicBlock
            (ResNet-18/34: its first 3x3 conv, strided in a stage's first block; timm's
            skresnet18/34 have their SK unit there). A Bottleneck's conv1 (1x1) is refused.
        stage_with_conv1_cfg (tuple[bool], optional): the stages ``conv1_cfg`` goes in.
        maxpool_cfg (dict, optional): ``nn.MaxPool2d`` arguments for the stem's max-pool
            (``kernel_size``, ``stride``, ``padding``, ``ceil_mode``) over mmdet's
            ``dict(kernel_size=3, stride=2, padding=1)``. Caffe-trained ResNets (Cadene's
            SE-ResNets and SE-ResNeXts) pool with ``dict(padding=0, ceil_mode=True)``: windows
            shifted by one pixel, the same output size on even maps (a 224 input), one row
            or column less on odd ones.

    A ResNet-V1d for detection is ``AttnResNet(deep_stem=True, avg_down=True, ...)``, as
    mmdet's ``ResNetV1d``.
    """

    attn_blocks = {BasicBlock: AttnBasicBlock, Bottleneck: AttnBottleneck}


@MODELS.register_module()
class AttnResNeXt(MaxPoolCfgMixin, ResNeXt):
    """mmdet's ``ResNeXt`` with attention plugins anywhere.

    Takes every argument of ``mmdet.models.backbones.ResNeXt`` (``depth`` 50/101/152,
    ``groups``, ``base_width``, and all of ``ResNet``'s) and, without plugins, has its
    parameters, state-dict keys, initialisation, outputs and freezing. ``plugins``,
    ``stage_plugins``, ``freeze_plugins``, the conv slot (``conv2_cfg``,
    ``stage_with_conv2_cfg``) and ``maxpool_cfg`` are as in :class:`AttnResNet`; plugins at
    ``after_conv1``/``after_conv2`` and the conv2 slot get the grouped width
    (``groups * floor(planes * base_width / base_channels)``), the slot the block's groups.

    SKNet-50, the SK authors' network (timm's ``skresnext50_32x4d``)::

        backbone=dict(type='mmattn.AttnResNeXt', depth=50, groups=32, base_width=4,
                      conv2_cfg=dict(type='mmattn.SKConv'))

    SE-ResNeXt-101 (32x4d) for detection::

        backbone=dict(type='mmattn.AttnResNeXt', depth=101, groups=32, base_width=4,
                      plugins=[dict(cfg=dict(type='mmattn.SE', reduction=16),
                                    position='after_conv3')])
    """

    attn_blocks = {XBottleneck: AttnXBottleneck}
