"""Backbones: mmdet's and mmseg's ResNets with attention plugins anywhere.

``AttnResNet`` (detection) needs mmdet, ``AttnResNetV1b``/``V1c``/``V1d`` (segmentation) need
mmseg. Without them (or if importing them fails) the names stay registered and exported, and
building one raises an ImportError that says why, so the attention modules work without
either library.
"""
from mmattn.registry import MODELS
from .classifier import (AUTHORS_PLACEMENT, ResNetClassifier, count_parameters,
                         resnet50_classifier, resnet_classifier)
from .conv_slot import AttnConv2d
from .res_plugins import resolve_block_plugins, resolve_stage_plugins


def _unavailable(name: str, package: str, error: Exception) -> type:
    """A registered placeholder that reports why ``name`` could not be built."""

    def __init__(self, *args, **kwargs):
        raise ImportError(f'mmattn.{name} needs {package}, which could not be imported: '
                          f'{error}') from error

    cls = type(name, (), {'__init__': __init__, '__doc__': f'Unavailable: needs {package}.',
                          '__module__': __name__})
    # force: a module that failed after registering its class must not block the placeholder
    MODELS.register_module(name=name, module=cls, force=True)
    return cls


# Not only ImportError: a broken install (e.g. a torchvision built for another torch, which
# mmseg imports through timm, raises RuntimeError) must not take the attention modules down.
try:
    from .attn_resnet import (AttnBasicBlock, AttnBottleneck, AttnResNet, AttnResNeXt,
                              AttnXBottleneck)
except Exception as err:  # noqa: B902  (no mmdet, or no mmcv ops)
    AttnResNet = _unavailable('AttnResNet', 'mmdet', err)
    AttnResNeXt = _unavailable('AttnResNeXt', 'mmdet', err)
    AttnBasicBlock = AttnBottleneck = AttnXBottleneck = None

try:
    from .attn_resnet_seg import (AttnResNetV1b, AttnResNetV1c, AttnResNetV1d,
                                  AttnSegBasicBlock, AttnSegBottleneck)
except Exception as err:  # noqa: B902
    AttnResNetV1b = _unavailable('AttnResNetV1b', 'mmseg', err)
    AttnResNetV1c = _unavailable('AttnResNetV1c', 'mmseg', err)
    AttnResNetV1d = _unavailable('AttnResNetV1d', 'mmseg', err)
    AttnSegBasicBlock = AttnSegBottleneck = None

__all__ = [
    'AttnResNet', 'AttnResNeXt', 'AttnResNetV1b', 'AttnResNetV1c', 'AttnResNetV1d',
    'AttnBasicBlock', 'AttnBottleneck', 'AttnXBottleneck',
    'AttnSegBasicBlock', 'AttnSegBottleneck', 'ResNetClassifier', 'resnet_classifier',
    'resnet50_classifier', 'count_parameters', 'AUTHORS_PLACEMENT', 'resolve_block_plugins',
    'resolve_stage_plugins', 'AttnConv2d'
]
