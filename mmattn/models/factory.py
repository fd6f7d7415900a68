"""Build any attention module by name, and describe what the registry holds (timm-style)."""
from typing import Dict, List, Type

from mmattn.registry import MODELS
from .base import BaseAttention


def attention_classes() -> Dict[str, Type[BaseAttention]]:
    """Every registered attention module, by registry name."""
    return {name: cls for name, cls in sorted(MODELS.module_dict.items())
            if isinstance(cls, type) and issubclass(cls, BaseAttention)}


def family_of(cls: type) -> str:
    """The family a module belongs to: the sub-package it lives in (channel, spatial, context)."""
    parts = cls.__module__.split('.')
    return parts[2] if len(parts) > 3 and parts[1] == 'models' else 'other'


def list_attention() -> List[dict]:
    """One row per registered attention module: name, family, paper, authors' code."""
    return [dict(name=name, family=family_of(cls), paper=cls.paper, code=cls.code,
                 abbr=cls._abbr_, plugin=cls.is_plugin)
            for name, cls in attention_classes().items()]


def build_attention(name: str, in_channels: int, **kwargs) -> BaseAttention:
    """Build a registered module by name, e.g. ``build_attention('SE', 256, reduction=8)``.

    ``name`` may carry the scope prefix (``'mmattn.SE'``) as configs write it.
    """
    if name.startswith(MODELS.scope + '.'):
        name = name[len(MODELS.scope) + 1:]
    cls = MODELS.get(name)
    if not (isinstance(cls, type) and issubclass(cls, BaseAttention)):
        raise KeyError(f'{name!r} is registered in mmattn but is not an attention module '
                       f'(it is a {cls!r}); attention modules: '
                       f'{", ".join(attention_classes())}')
    return cls(in_channels=in_channels, **kwargs)
