"""Build any attention module by name, and describe what the registry holds (timm-style):
every registered class with its family, arguments, placement in a ResNet-50 and what it adds
there (``python -m mmattn list``)."""
import importlib
import inspect
import os.path as osp
import pkgutil
import re
from typing import Dict, List, Optional, Sequence, Type

from mmattn.arguments import parameters, value_text
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


# the families of the registered classes, in the order they are listed
FAMILIES = ('channel', 'spatial', 'context', 'backbone', 'neck', 'head')
_PACKAGE_FAMILY = {'backbones': 'backbone', 'necks': 'neck', 'heads': 'head'}


def family_of(cls: type) -> str:
    """The family of a registered class: the sub-package of ``mmattn.models`` it lives in
    (channel, spatial, context for attention modules; backbone, neck, head)."""
    parts = cls.__module__.split('.')
    if len(parts) < 3 or parts[1] != 'models':
        return 'other'
    return _PACKAGE_FAMILY.get(parts[2], parts[2])


def registered_classes() -> Dict[str, type]:
    """Every class registered in the ``mmattn`` scope (attention modules, backbones, necks,
    heads), by registry name, family by family."""
    classes = {name: cls for name, cls in MODELS.module_dict.items() if isinstance(cls, type)}
    return dict(sorted(classes.items(), key=lambda item: (
        FAMILIES.index(family_of(item[1])) if family_of(item[1]) in FAMILIES
        else len(FAMILIES), item[0].lower())))


# -- where a module goes in a ResNet-50, in words ------------------------------------------------
def short_type(t) -> str:
    """'mmattn.SE' -> 'SE'."""
    return str(t).split('.')[-1]


def _layers(stages) -> str:
    idx = [i + 1 for i, on in enumerate(stages) if on]
    if len(idx) > 2 and idx == list(range(idx[0], idx[-1] + 1)):
        return f'layer{idx[0]}-{idx[-1]}'
    return ', '.join(f'layer{i}' for i in idx)


def _position(position) -> str:
    """'after_conv3' -> 'after conv3'; 'after_block' -> 'on the block's output'."""
    return 'on the block\'s output' if position == 'after_block' else position.replace('_', ' ')


def _blocks(blocks, stages) -> str:
    if blocks in (None, 'all'):
        return 'every block'
    if isinstance(blocks, str):
        return f'{blocks} block'
    return 'blocks ' + '; '.join(
        f'{",".join(str(b) for b in sel)} of layer{i + 1}'
        for i, sel in enumerate(blocks) if sel and stages[i])


def describe_backbone_placement(backbone, name) -> list:
    """Where AttnResNet keyword arguments (a backbone config, or a class's ``placement``)
    put ``mmattn.<name>``, in words: one phrase per kind of placement."""
    parts = []
    grouped = {}
    for spec in backbone.get('plugins') or []:
        if short_type(spec['cfg']['type']) != name:
            continue
        stages = spec.get('stages') or (True, ) * backbone.get('num_stages', 4)
        blocks = spec.get('blocks')
        if isinstance(blocks, (list, tuple)):
            parts.append(f'{_position(spec["position"])}, {_blocks(blocks, stages)}')
            continue
        key = (spec['position'], blocks)
        grouped[key] = [a or b for a, b in zip(grouped.get(key, [False] * len(stages)),
                                                stages)]
    for (position, blocks), stages in grouped.items():
        parts.append(f'{_position(position)}, {_blocks(blocks, stages)} of '
                     f'{_layers(stages)}')
    for slot in ('conv1', 'conv2'):  # the conv slot: a layer in place of a block's conv
        cfg = backbone.get(f'{slot}_cfg')
        if not cfg:
            continue
        stages = backbone.get(f'stage_with_{slot}_cfg') or (True, ) * backbone.get(
            'num_stages', 4)
        attention = cfg.get('attention') if isinstance(cfg.get('attention'), dict) else {}
        resnext = (f' of a ResNeXt ({backbone["groups"]}x{backbone.get("base_width", 4)}d)'
                   if backbone.get('groups', 1) > 1 else '')
        if short_type(cfg['type']) == name:
            parts.append(f'in place of {slot}, every block of {_layers(stages)}{resnext}')
        elif short_type(attention.get('type')) == name:
            parts.append(f'right after {slot}, before its norm, every block of '
                         f'{_layers(stages)}{resnext}')
    stage_union = None
    for spec in backbone.get('stage_plugins') or []:
        if short_type(spec['cfg']['type']) == name:
            stages = spec['stages']
            stage_union = [a or b for a, b in zip(stage_union or [False] * len(stages), stages)]
    if stage_union:
        parts.append(f'between stages: on the output of {_layers(stage_union)}')
    return parts


def placement_text(name: str, cls: type) -> str:
    """Where the class's ``placement`` puts it in a ResNet-50, in words, or why it has none."""
    placement = getattr(cls, 'placement', None)
    if placement is None:
        return getattr(cls, 'no_placement', '')
    return '; '.join(describe_backbone_placement(placement, name))


# -- what a module adds to a ResNet-50 ------------------------------------------------------------
RESNET50_SHAPE = (224, 224)
COSTS_FILE = osp.join(osp.dirname(osp.abspath(__file__)), 'resnet50_costs.py')


def count_resnet50_costs(names: Optional[Sequence[str]] = None) -> dict:
    """Count what each attention module adds to an ImageNet ResNet-50 classifier at 224x224,
    placed as its class's ``placement`` says, with mmengine's counter
    (:func:`mmattn.utils.complexity.analyze_model`, which ``tools/analysis/model_zoo.py``
    uses for the README's module table): about a second per module on a CPU.

    Returns ``dict(shape, plain=dict(params, flops), added={name: dict(params, flops,
    instances)})`` for ``names`` (default: every placed module).
    """
    import copy

    import torch

    from mmattn.utils.complexity import analyze_model
    from .backbones import resnet50_classifier
    classes = attention_classes()
    names = [n for n in (names if names is not None else classes)
             if classes[n].placement is not None]
    x = torch.randn(1, 3, *RESNET50_SHAPE, generator=torch.Generator().manual_seed(0))

    def count(placement):
        return analyze_model(resnet50_classifier(**copy.deepcopy(placement or {})).eval(), x)

    plain = count(None)
    added = {}
    for name in names:
        c = count(classes[name].placement).attention.get(name)
        added[name] = dict(params=int(c['params']), flops=int(c['flops']),
                           instances=len(c['instances']))
    return dict(shape=RESNET50_SHAPE, plain=dict(params=int(plain.params),
                                                 flops=int(plain.flops)), added=added)


def stored_resnet50_costs() -> dict:
    """The figures of :func:`count_resnet50_costs` as ``mmattn/models/resnet50_costs.py``
    holds them (written by ``python -m mmattn list --count --write``; a test counts again)."""
    from . import resnet50_costs
    return dict(shape=tuple(resnet50_costs.SHAPE), plain=dict(resnet50_costs.PLAIN),
                added={k: dict(v) for k, v in resnet50_costs.ADDED.items()})


def write_resnet50_costs(costs: dict, path: str = COSTS_FILE) -> None:
    """Write ``costs`` (:func:`count_resnet50_costs` of every placed module) as the module
    :func:`stored_resnet50_costs` reads."""
    h, w = costs['shape']
    lines = [
        f'"""What each attention module adds to an ImageNet ResNet-50 classifier at {h}x{w}, '
        'placed as',
        "its class's ``placement`` says: parameters, FLOPs (multiply-adds, mmengine's count) "
        'and',
        'instances, shown by ``python -m mmattn list``.',
        '',
        'Generated by ``python -m mmattn list --count --write``',
        '(:func:`mmattn.models.factory.count_resnet50_costs`); ``tests/test_registry.py`` '
        'counts again',
        'and compares. Do not edit.',
        '"""',
        f'SHAPE = {(h, w)!r}',
        f'PLAIN = dict(params={costs["plain"]["params"]}, flops={costs["plain"]["flops"]})',
        'ADDED = {']
    for name, c in sorted(costs['added'].items()):
        lines.append(f"    '{name}': dict(params={c['params']}, flops={c['flops']}, "
                     f"instances={c['instances']}),")
    lines.append('}')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


# -- the listing ----------------------------------------------------------------------------------
def _json_safe(value):
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def arguments_of(cls: type) -> List[dict]:
    """The constructor arguments of a registered class (its own and, through ``**kwargs``,
    its bases'): ``name``, ``default`` (absent where the argument is required) and
    ``keyword_only``."""
    rows = []
    for p in parameters(cls).named.values():
        row = dict(name=p.name, keyword_only=p.kind is p.KEYWORD_ONLY)
        if p.default is not p.empty:
            row['default'] = _json_safe(p.default)
        rows.append(row)
    return rows


def signature_text(name: str, cls: type) -> str:
    """``SE(in_channels, *, reduction=16, ...)``: the constructor as a config or a call
    writes it (defaults as dicts and tuples)."""
    parts, star = [], False
    for p in parameters(cls).named.values():
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append('*')
            star = True
        parts.append(p.name if p.default is p.empty else f'{p.name}={value_text(p.default)}')
    return f'{name}({", ".join(parts)})'


def _summary(cls: type) -> str:
    doc = inspect.getdoc(cls) or ''
    first = doc.split('\n\n')[0].replace('\n', ' ').strip()
    return re.sub(r':\w+:`~?([^`<]*?)(?: <[^>]*>)?`', r'\1', first).replace('``', '')


def list_registered(costs: Optional[dict] = None) -> List[dict]:
    """One row per registered class, family by family: ``type`` as configs write it, ``name``,
    ``family``, ``summary`` (the docstring's first sentence), ``signature``, ``arguments``
    (:func:`arguments_of`); for attention modules also ``paper``, ``code``, ``abbr``,
    ``plugin``, ``placement`` (AttnResNet keyword arguments, or None), ``where`` (the
    placement in words, or why there is none) and ``resnet50``: what the module adds to a
    ResNet-50 at that placement (``params``, ``flops``, ``instances``, and the shares of the
    plain network's in percent), from ``costs`` (default: :func:`stored_resnet50_costs`);
    None where the module has no placement or no figures."""
    costs = stored_resnet50_costs() if costs is None else costs
    plain = costs['plain']
    rows = []
    for name, cls in registered_classes().items():
        row = dict(type=f'{MODELS.scope}.{name}', name=name, family=family_of(cls),
                   summary=_summary(cls), signature=signature_text(name, cls),
                   arguments=arguments_of(cls))
        if isinstance(cls, type) and issubclass(cls, BaseAttention):
            added = costs['added'].get(name) if cls.placement is not None else None
            if added is not None:
                added = dict(added, params_percent=100 * added['params'] / plain['params'],
                             flops_percent=100 * added['flops'] / plain['flops'])
            row.update(paper=cls.paper, code=cls.code, abbr=cls._abbr_, plugin=cls.is_plugin,
                       placement=_json_safe(cls.placement), where=placement_text(name, cls),
                       resnet50=added)
        rows.append(row)
    return rows


def list_attention() -> List[dict]:
    """One row per registered attention module: name, family, paper, authors' code, abbr,
    plugin (:func:`list_registered` has every registered class, with more)."""
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
