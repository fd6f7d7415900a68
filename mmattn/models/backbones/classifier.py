"""ResNet classifiers (backbone + global average pool + fc) for parameter and FLOP counts.

The papers report the size of an ImageNet ResNet-50 with their module: this rebuilds that
network from :class:`AttnResNet` so that our modules, at their authors' placement, can be
counted against those numbers (plain ResNet-50: 25,557,032 parameters, torchvision's).
"""
import copy
from collections.abc import Mapping
from typing import Iterator, Optional, Sequence

import torch
from torch import nn

from ..factory import attention_classes


class _Placements(Mapping):
    """Registry name -> the AttnResNet keyword arguments that place the module in a ResNet-50
    (``plugins=`` / ``stage_plugins=``, or a conv slot: ``conv2_cfg=``; with ``groups`` and
    ``base_width``, an AttnResNeXt-50): each class's ``placement`` attribute (see
    :class:`mmattn.models.BaseAttention`), read from the registry on every access, so a module
    registered later is in it. Modules with a ``no_placement`` reason are not; asking for one
    raises a KeyError with its reason. Each access returns a copy.

    For SE, CBAM, SGE, SRM, triplet attention, SimAM and SKConv (SKNet-50) it is their authors'
    ImageNet network, whose parameter count
    ``tests/test_models/test_backbones/test_param_counts.py`` checks
    against the paper's; the others repeat the backbone part of their
    ``configs/faster_rcnn_<module>_r50_coco.py``, which the same test checks.
    """

    def __getitem__(self, name: str) -> dict:
        cls = attention_classes().get(name)
        if cls is None:
            raise KeyError(f'{name!r} is not a registered mmattn attention module')
        if cls.placement is None:
            reason = cls.no_placement or ('its class declares no `placement` (see '
                                          'mmattn.models.BaseAttention)')
            raise KeyError(f'mmattn.{name} has no ResNet-50 placement: {reason}')
        return copy.deepcopy(cls.placement)

    def __iter__(self) -> Iterator[str]:
        return (name for name, cls in attention_classes().items() if cls.placement is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


AUTHORS_PLACEMENT = _Placements()


class ResNetClassifier(nn.Module):
    """``backbone`` (its last output) -> global average pool -> ``Linear(feat, num_classes)``.

    Args:
        backbone: a ResNet backbone module whose last output has ``backbone.feat_dim``
            channels (mmdet's and mmseg's ResNets set it).
        num_classes: outputs of the fc layer.
    """

    def __init__(self, backbone: nn.Module, num_classes: int = 1000):
        super().__init__()
        self.backbone = backbone
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(backbone.feat_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.backbone(x)[-1]).flatten(1))


def resnet_classifier(depth: int = 50, plugins: Optional[Sequence[dict]] = None,
                      stage_plugins: Optional[Sequence[dict]] = None,
                      num_classes: int = 1000, **backbone_kwargs) -> ResNetClassifier:
    """An ImageNet-style classifier on :class:`AttnResNet` (needs mmdet).

    ``plugins`` and ``stage_plugins`` are AttnResNet's; ``backbone_kwargs`` go to it too
    (``groups`` and ``base_width`` make it an :class:`AttnResNeXt`: SKNet-50, the SK authors'
    network, is a ResNeXt-50 32x4d). The backbone has torchvision's ResNet layout (7x7 stem,
    stride on the 3x3 conv) and its weight names, so a torchvision checkpoint loads into
    ``classifier.backbone`` and ``classifier.fc`` (with the ``backbone.`` prefix added to the
    backbone's keys).
    """
    from .attn_resnet import AttnResNet, AttnResNeXt
    backbone_kwargs.setdefault('norm_eval', False)
    cls = AttnResNeXt if 'groups' in backbone_kwargs else AttnResNet
    backbone = cls(depth=depth, out_indices=(3, ), plugins=plugins,
                   stage_plugins=stage_plugins, **backbone_kwargs)
    return ResNetClassifier(backbone, num_classes=num_classes)


def resnet50_classifier(plugins: Optional[Sequence[dict]] = None,
                        stage_plugins: Optional[Sequence[dict]] = None,
                        num_classes: int = 1000, **backbone_kwargs) -> ResNetClassifier:
    """ResNet-50 classifier, e.g. ``resnet50_classifier(**AUTHORS_PLACEMENT['SE'])``."""
    return resnet_classifier(50, plugins=plugins, stage_plugins=stage_plugins,
                             num_classes=num_classes, **backbone_kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (buffers such as BN statistics or fixed DCT bases not counted)."""
    return sum(p.numel() for p in model.parameters())
