"""mmseg's ResNetV1c/V1d (and its plain-stem ResNet, "V1b") with plugins in every block type, in
chosen blocks, between stages.

For segmentation configs: ``backbone=dict(type='mmattn.AttnResNetV1c', depth=50, ...)``;
``mmattn.AttnResNetV1b`` takes the ImageNet checkpoints of the converters
(``tools/model_converters/convert.py``), whose released networks have the 7x7 stem. Beyond
mmseg's own backbones this runs every plugin at a position (mmseg 1.2.2's Bottleneck runs only
the last one of several) and keeps mmseg's ``dilations``, ``contract_dilation`` and
``multi_grid``.
"""
from mmseg.models.backbones.resnet import (BasicBlock, Bottleneck, ResNet, ResNetV1c,
                                           ResNetV1d)

from mmattn.registry import MODELS
from .res_plugins import AttnResNetMixin, BasicBlockPluginMixin, BottleneckPluginMixin


class AttnSegBasicBlock(BasicBlockPluginMixin, BasicBlock):
    """mmseg's BasicBlock that takes plugins (see :class:`BasicBlockPluginMixin`)."""


class AttnSegBottleneck(BottleneckPluginMixin, Bottleneck):
    """mmseg's Bottleneck whose plugins at one position all run, in order."""


_SEG_BLOCKS = {BasicBlock: AttnSegBasicBlock, Bottleneck: AttnSegBottleneck}

_DOC = """mmseg's ``{base}`` with attention plugins anywhere.

    Takes every argument of ``mmseg.models.backbones.{base}`` (``depth``, ``strides``,
    ``dilations``, ``contract_dilation``, ``multi_grid``, ``norm_eval``, ``init_cfg``, ...),
    as it takes them (mmseg's ``{base}`` takes keywords only), and, without plugins, has its
    parameters, state-dict keys, initialisation and outputs. What it adds (keyword-only):

    Args:
        plugins (list[dict]): as in mmseg (``cfg``, ``position``, ``stages``), plus
            ``blocks``: ``None``/``'all'``, ``'last'``, ``'first'`` or one tuple of block
            indices per stage, e.g. ``blocks=((), (1, 3), (1, 3, 5), ())``. All plugins at
            one position run, in list order. Positions: ``after_conv1/2/3`` (in the residual
            branch) and ``after_block``: on the block's output, after the residual addition
            and ReLU (where Non-local's authors put it). Plugins also work on ResNet-18/34's
            BasicBlock: ``after_conv1`` follows its first conv + norm + ReLU, ``after_conv2``
            and then ``after_conv3`` follow its second conv + norm, before the residual
            addition. With ``with_cp`` the ``after_block`` plugins are checkpointed too.
        stage_plugins (list[dict]): ``dict(cfg=..., stages=(...))``: a module applied to a
            stage's output (``in_channels`` = its width), before the next stage and the
            backbone's outputs see it. It is named ``layer{{i}}_attn`` and belongs to the
            stage whose output it refines.
        freeze_plugins (bool): whether ``frozen_stages`` freezes the attention modules of
            those stages too, as mmseg's ResNet does. Default False: the ResNet's own layers
            are frozen and the attention modules, which a plain ResNet checkpoint does not
            hold, train. Set True for a checkpoint that includes them.
        conv2_cfg, stage_with_conv2_cfg, conv1_cfg, stage_with_conv1_cfg: the conv slot, as
            in :class:`~mmattn.models.backbones.AttnResNet`: a registered conv-like layer
            (``mmattn.SKConv``, ``mmattn.AttnConv2d``) in place of ``conv2`` (``conv1`` of a
            BasicBlock) in the chosen stages, built with the replaced conv's arguments, so
            mmseg's dilated stages (``dilations``, ``contract_dilation``, ``multi_grid``)
            carry over.
    """


@MODELS.register_module()
class AttnResNetV1c(AttnResNetMixin, ResNetV1c):
    __doc__ = _DOC.format(base='ResNetV1c')

    attn_blocks = _SEG_BLOCKS


@MODELS.register_module()
class AttnResNetV1d(AttnResNetMixin, ResNetV1d):
    __doc__ = _DOC.format(base='ResNetV1d')

    attn_blocks = _SEG_BLOCKS


@MODELS.register_module()
class AttnResNetV1b(AttnResNetMixin, ResNet):
    __doc__ = _DOC.format(base='ResNet') + """
    mmseg's default ``ResNet`` (its docs call it ResNetV1b: a 7x7 stem conv, the stride in the
    3x3 conv) has the layout, and the keys, of the authors' and timm's ImageNet networks with
    attention modules in them; their converted checkpoints load into it (ResNetV1c's three 3x3
    stem convs are another network).
    """

    attn_blocks = _SEG_BLOCKS
