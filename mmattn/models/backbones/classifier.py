"""ResNet classifiers (backbone + global average pool + fc) for parameter and FLOP counts.

The papers report the size of an ImageNet ResNet-50 with their module: this rebuilds that
network from :class:`AttnResNet` so that our modules, at their authors' placement, can be
counted against those numbers (plain ResNet-50: 25,557,032 parameters, torchvision's).
"""
from typing import Optional, Sequence

import torch
from torch import nn

# Where each module's authors put it in their ResNet-50, as plugin configs of AttnResNet
# (``plugins`` / ``stage_plugins``), with the parameter count of their classifier.
AUTHORS_PLACEMENT = {
    'SE': dict(plugins=[dict(cfg=dict(type='mmattn.SE'), position='after_conv3')]),
    'CBAM': dict(plugins=[dict(cfg=dict(type='mmattn.CBAM'), position='after_conv3')]),
    'SGE': dict(plugins=[dict(cfg=dict(type='mmattn.SGE'), position='after_conv3')]),
    'SRM': dict(plugins=[dict(cfg=dict(type='mmattn.SRM'), position='after_conv3')]),
    'TripletAttention': dict(
        plugins=[dict(cfg=dict(type='mmattn.TripletAttention'), position='after_conv3')]),
    # the authors' SimAM follows the 3x3 conv (before bn2); after_conv2 is the closest point
    'SimAM': dict(plugins=[dict(cfg=dict(type='mmattn.SimAM'), position='after_conv2')]),
}


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

    ``plugins`` and ``stage_plugins`` are AttnResNet's; ``backbone_kwargs`` go to it too. The
    backbone has torchvision's ResNet layout (7x7 stem, stride on the 3x3 conv) and its weight
    names, so a torchvision checkpoint loads into ``classifier.backbone`` and ``classifier.fc``
    (with the ``backbone.`` prefix added to the backbone's keys).
    """
    from .attn_resnet import AttnResNet
    backbone_kwargs.setdefault('norm_eval', False)
    backbone = AttnResNet(depth=depth, out_indices=(3, ), plugins=plugins,
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
