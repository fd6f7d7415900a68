"""ResNet classifiers (backbone + global average pool + fc) for parameter and FLOP counts.

The papers report the size of an ImageNet ResNet-50 with their module: this rebuilds that
network from :class:`AttnResNet` so that our modules, at their authors' placement, can be
counted against those numbers (plain ResNet-50: 25,557,032 parameters, torchvision's).
"""
from typing import Optional, Sequence

import torch
from torch import nn

# Where each module goes in a ResNet-50, as plugin configs of AttnResNet (``plugins`` /
# ``stage_plugins``). The first six are their authors' ImageNet networks, whose parameter
# counts tests/test_models/test_backbones/test_param_counts.py checks against the papers'.
# The others repeat the backbone part of configs/faster_rcnn_<module>_r50_coco.py (its
# comments give the authors' placement, or say where it is this library's choice); that test
# checks that both build the same modules with the same parameters, so a change to a config
# that is not made here fails it.
_EVERY_BLOCK = (True, True, True, True)
_LAST_STAGE = (False, False, False, True)
_RGA = dict(type='mmattn.RGA', use_spatial=True, use_channel=True, cha_ratio=8, spa_ratio=8,
            down_ratio=8)

AUTHORS_PLACEMENT = {
    'SE': dict(plugins=[dict(cfg=dict(type='mmattn.SE'), position='after_conv3')]),
    'CBAM': dict(plugins=[dict(cfg=dict(type='mmattn.CBAM'), position='after_conv3')]),
    'SGE': dict(plugins=[dict(cfg=dict(type='mmattn.SGE'), position='after_conv3')]),
    'SRM': dict(plugins=[dict(cfg=dict(type='mmattn.SRM'), position='after_conv3')]),
    'TripletAttention': dict(
        plugins=[dict(cfg=dict(type='mmattn.TripletAttention'), position='after_conv3')]),
    # the authors' SimAM follows the 3x3 conv (before bn2); after_conv2 is the closest point
    'SimAM': dict(plugins=[dict(cfg=dict(type='mmattn.SimAM'), position='after_conv2')]),
    # -- as in configs/faster_rcnn_<module>_r50_coco.py --------------------------------------
    'ECA': dict(plugins=[
        dict(cfg=dict(type='mmattn.ECA'), stages=_EVERY_BLOCK, position='after_conv3')]),
    'GatherExcite': dict(plugins=[
        dict(cfg=dict(type='mmattn.GatherExcite', variant='theta-minus'), stages=_EVERY_BLOCK,
             position='after_conv3')]),
    # DCT sizes 56/28/14/7: the stage sizes of a 224x224 image, the authors' setting
    'FcaNet': dict(plugins=[
        dict(cfg=dict(type='mmattn.FcaNet', dct_size=size, freq_sel_method='top16',
                      reduction=16),
             stages=tuple(i == stage for i in range(4)), position='after_conv3')
        for stage, size in enumerate((56, 28, 14, 7))]),
    'GSoP': dict(plugins=[
        dict(cfg=dict(type='mmattn.GSoP', att_dim=128, dr_stride=2),
             stages=(True, False, False, False), position='after_conv3', blocks='last'),
        dict(cfg=dict(type='mmattn.GSoP', att_dim=128, dr_stride=1),
             stages=(False, True, True, True), position='after_conv3', blocks='last')]),
    'SPA': dict(plugins=[
        dict(cfg=dict(type='mmattn.SPA', reduction=16, pool_sizes=(1, 2, 4)),
             stages=_EVERY_BLOCK, position='after_conv3')]),
    'CSE': dict(plugins=[
        dict(cfg=dict(type='mmattn.CSE', reduction=2), stages=_EVERY_BLOCK,
             position='after_conv3')]),
    'SSE': dict(plugins=[
        dict(cfg=dict(type='mmattn.SSE'), stages=_EVERY_BLOCK, position='after_conv3')]),
    'SCSE': dict(plugins=[
        dict(cfg=dict(type='mmattn.SCSE', reduction=2, fusion='max'), stages=_EVERY_BLOCK,
             position='after_conv3')]),
    'BAM': dict(stage_plugins=[
        dict(cfg=dict(type='mmattn.BAM', reduction=16, dilation=4),
             stages=(True, True, True, False))]),
    'CoordAttention': dict(plugins=[
        dict(cfg=dict(type='mmattn.CoordAttention', reduction=32), stages=_EVERY_BLOCK,
             position='after_conv3')]),
    'SelectiveKernel': dict(plugins=[
        dict(cfg=dict(type='mmattn.SelectiveKernel', num_branches=2, groups=32, reduction=16,
                      min_channels=32),
             stages=_EVERY_BLOCK, position='after_conv2')]),
    'ResidualAttention': dict(stage_plugins=[
        dict(cfg=dict(type='mmattn.ResidualAttention', num_downsamples=n, p=1, t=2, r=1),
             stages=tuple(i == stage for i in range(4)))
        for stage, n in enumerate((3, 2, 1))]),
    'NonLocal': dict(plugins=[
        dict(cfg=dict(type='mmattn.NonLocal', reduction=2, mode='embedded_gaussian',
                      use_scale=True, sub_sample=True),
             stages=(False, True, True, False), blocks=((), (1, 3), (1, 3, 5), ()),
             position='after_block')]),
    'GlobalContext': dict(plugins=[
        dict(cfg=dict(type='mmattn.GlobalContext', ratio=1. / 16, pooling_type='att',
                      fusion_types=('channel_add', )),
             stages=(False, True, True, True), position='after_conv3')]),
    'DoubleAttention': dict(plugins=[
        dict(cfg=dict(type='mmattn.DoubleAttention', c_m=512, c_n=512), stages=_LAST_STAGE,
             blocks='last', position='after_conv3')]),
    'DANetPAM': dict(plugins=[
        dict(cfg=dict(type='mmattn.DANetPAM', reduction=8), stages=_LAST_STAGE,
             blocks='last', position='after_block')]),
    'DANetCAM': dict(plugins=[
        dict(cfg=dict(type='mmattn.DANetCAM'), stages=_LAST_STAGE, blocks='last',
             position='after_block')]),
    'CrissCross': dict(plugins=[
        dict(cfg=dict(type='mmattn.CrissCross', reduction=8, recurrence=2),
             stages=_LAST_STAGE, blocks='last', position='after_block')]),
    # the detection config's grids (the authors' cell counts laid out landscape)
    'RGA': dict(stage_plugins=[
        dict(cfg=dict(_RGA, spatial_size=(32, 64)), stages=(True, False, False, False)),
        dict(cfg=dict(_RGA, spatial_size=(16, 32)), stages=(False, True, False, False)),
        dict(cfg=dict(_RGA, spatial_size=(8, 16)), stages=(False, False, True, True))]),
    # configs/faster_rcnn_iau_r50_coco.py places both IAU modules; each alone here
    'ChannelIAU': dict(stage_plugins=[
        dict(cfg=dict(type='mmattn.ChannelIAU'), stages=(False, True, True, False))]),
    'SpatialIAU': dict(stage_plugins=[
        dict(cfg=dict(type='mmattn.SpatialIAU', num_parts=4, reduction=2),
             stages=(False, True, True, False))]),
}

# Registered modules that have no place in a ResNet classifier, and why.
NO_BACKBONE_PLACEMENT = {
    'APNBlock': 'ANN\'s pyramid non-local block runs in its segmentation head (AttnANNHead, '
                'configs/ann_r50-d8_*), on the last stage\'s output; no backbone config',
    'AFNBlock': 'fuses two backbone stages into the segmentation head\'s input (AttnANNHead); '
                'not a plugin (two inputs)',
    'ObjectContext': 'OCR\'s object context needs the coarse class map of a segmentation '
                     'head (AttnOCRHead); not a plugin',
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
