"""Build any attention module by name, and describe what the registry holds (timm-style)."""
import importlib
import pkgutil
from typing import Dict, List, Optional, Type

from mmattn.registry import MODELS
from .base import BaseAttention
from .utils import MissingKeyError


def attention_classes() -> Dict[str, Type[BaseAttention]]:
    """Every registered attention module, by registry name."""
    return {name: cls for name, cls in sorted(MODELS.module_dict.items())
            if isinstance(cls, type) and issubclass(cls, BaseAttention)}


def import_family(package: str, path: List[str], namespace: dict) -> List[str]:
    """Import every module file of a family package, which registers the classes it defines.

    Called by ``mmattn.models.{channel,spatial,context}/__init__.py``, so that a new file in
    one of those folders needs no edit elsewhere. The attention modules registered there are
    bound in the package's ``namespace`` (``from mmattn.models.channel import SE``); their
    names, sorted, are returned for the package's ``__all__``.
    """
    names = []
    for info in sorted(pkgutil.iter_modules(path), key=lambda info: info.name):
        module = importlib.import_module(f'{package}.{info.name}')
        registered = set(MODELS.module_dict.values())
        for name, obj in vars(module).items():
            if isinstance(obj, type) and obj.__module__ == module.__name__ and \
                    issubclass(obj, BaseAttention) and obj in registered:
                namespace[name] = obj
                names.append(name)
    return sorted(names)


def draws_maps(cls: Type[BaseAttention]) -> bool:
    """Whether the class declares maps for the attention-map tool (gates or a method)."""
    return bool(cls.channel_gates or cls.spatial_gates
                or cls.attention_maps is not BaseAttention.attention_maps)


def missing_declarations(cls: Type[BaseAttention]) -> List[str]:
    """What a module has yet to declare for the tools (see :class:`BaseAttention`): one
    sentence per gap, saying what to add; empty when nothing is missing."""
    name = cls.__name__
    gaps = []
    if cls.placement is None and not cls.no_placement:
        gaps.append(
            f'{name} declares no ResNet-50 placement: set its class attribute `placement` to '
            f'the AttnResNet keyword arguments that place it as its authors do (e.g. '
            f"placement = dict(plugins=[dict(cfg=dict(type='mmattn.{name}'), "
            f"position='after_conv3')])), or `no_placement` to the reason it has none")
    elif cls.placement is not None and cls.no_placement:
        gaps.append(f'{name} declares both `placement` and `no_placement`: keep one')
    if not draws_maps(cls) and not cls.no_maps:
        gaps.append(
            f'{name} declares no attention maps: set its class attribute `channel_gates` or '
            f"`spatial_gates` ({{map name: path of the submodule whose output is the gate}}, "
            f"e.g. channel_gates = {{'channel gate': 'gate'}}), define an `attention_maps()` "
            f'method, or set `no_maps` to the reason there is nothing to draw')
    elif draws_maps(cls) and cls.no_maps:
        gaps.append(f'{name} declares maps and `no_maps`: keep one')
    return gaps


def family_of(cls: type) -> str:
    """The family a module belongs to: the sub-package it lives in (channel, spatial, context)."""
    parts = cls.__module__.split('.')
    return parts[2] if len(parts) > 3 and parts[1] == 'models' else 'other'


def list_attention() -> List[dict]:
    """One row per registered attention module: name, family, paper, authors' code."""
    return [dict(name=name, family=family_of(cls), paper=cls.paper, code=cls.code,
                 abbr=cls._abbr_, plugin=cls.is_plugin)
            for name, cls in attention_classes().items()]


def build_attention(cfg, in_channels: Optional[int] = None, **kwargs) -> BaseAttention:
    """Build a registered module from its name or its config.

    ``build_attention('SE', 256, reduction=8)``, or, as configs write it,
    ``build_attention(dict(type='ECA'), in_channels=64)`` (``in_channels`` may also be in
    the dict). Names may carry the scope prefix (``'mmattn.SE'``). Keyword arguments override
    the dict's.
    """
    if isinstance(cfg, str):
        name, args = cfg, {}
    elif isinstance(cfg, dict):
        if 'type' not in cfg:
            # a KeyError as mmcv's build_plugin_layer raises here, whose str() is not quoted
            raise MissingKeyError(f'build_attention: the config needs a "type" (a module '
                                  f"name, e.g. dict(type='SE')), got keys {sorted(cfg)}: "
                                  f'{dict(cfg)!r}')
        args = dict(cfg)
        name = args.pop('type')
        if not isinstance(name, str):
            raise TypeError(f'build_attention: "type" must be a registered module name, got '
                            f'{name!r}')
    else:
        raise TypeError(f'build_attention: expected a module name or a config dict with a '
                        f"\"type\" (e.g. 'SE' or dict(type='SE')), got {type(cfg).__name__}")
    args.update(kwargs)
    if in_channels is not None:
        args['in_channels'] = in_channels
    if 'in_channels' not in args:
        raise TypeError(f'build_attention({name!r}): in_channels is required (the width of '
                        f'the feature map the module sees)')
    if name.startswith(MODELS.scope + '.'):
        name = name[len(MODELS.scope) + 1:]
    cls = MODELS.get(name)
    if cls is None:
        raise KeyError(f'{name!r} is not a registered mmattn module; attention modules: '
                       f'{", ".join(attention_classes())}')
    if not (isinstance(cls, type) and issubclass(cls, BaseAttention)):
        raise KeyError(f'{name!r} is registered in mmattn but is not an attention module '
                       f'(it is a {cls!r}); attention modules: '
                       f'{", ".join(attention_classes())}')
    return cls(**args)
