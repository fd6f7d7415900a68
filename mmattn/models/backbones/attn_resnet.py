"""mmdet's ResNet with plugins in every block type, in chosen blocks, and between stages.

For detection configs: ``backbone=dict(type='mmattn.AttnResNet', depth=50, plugins=[...])``.
"""
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck, ResNet

from mmattn.registry import MODELS
from .res_plugins import AttnResNetMixin, BasicBlockPluginMixin, BottleneckPluginMixin


class AttnBasicBlock(BasicBlockPluginMixin, BasicBlock):
    """mmdet's BasicBlock that takes plugins (see :class:`BasicBlockPluginMixin`)."""


class AttnBottleneck(BottleneckPluginMixin, Bottleneck):
    """mmdet's Bottleneck that takes plugins in chosen blocks."""


@MODELS.register_module()
class AttnResNet(AttnResNetMixin, ResNet):
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

    A ResNet-V1d for detection is ``AttnResNet(deep_stem=True, avg_down=True, ...)``, as
    mmdet's ``ResNetV1d``.
    """

    attn_blocks = {BasicBlock: AttnBasicBlock, Bottleneck: AttnBottleneck}
