"""A ResNet block's 3x3 conv, replaced by a registered conv-like layer (the conv slot).

Some authors put their module *in place of* a block's 3x3 conv, or between that conv and its
norm, where no plugin goes: SKNet's selective kernel unit replaces the grouped 3x3 conv of
every ResNeXt bottleneck (timm's skresnet18/34: the first 3x3 conv of every BasicBlock), and
SimAM's authors run SimAM right after the 3x3 conv, before its BN
(``conv2 = nn.Sequential(conv2, simam)``). mmdet's ResNet has one such slot, ``dcn=`` with
``stage_with_dcn=``, for deformable convs. The backbones here have two, for any conv-like
layer of the registry:

- ``conv2_cfg`` / ``stage_with_conv2_cfg``: ``conv2`` of every block of the chosen stages (the
  Bottleneck's 3x3 conv, strided in a stage's first block; the BasicBlock's second conv);
- ``conv1_cfg`` / ``stage_with_conv1_cfg``: ``conv1`` of every BasicBlock (ResNet-18/34) of the
  chosen stages, its first 3x3 conv, strided in a stage's first block. A Bottleneck's conv1 is
  a 1x1 conv: refused.

The layer is built with the replaced conv's arguments, as mmdet builds conv2: ``in_channels``,
``out_channels``, ``kernel_size``, ``stride``, ``padding``, ``dilation``, ``groups`` and
``bias`` (so a ResNeXt's groups, mmseg's dilated stages and ``style='caffe'`` carry over), and
with the backbone's ``norm_cfg`` where it takes a ``norm_cfg`` its config does not set. A
*conv-like* layer is one whose constructor takes those eight arguments (or ``**kwargs``):
``mmattn.SKConv``, ``mmattn.AttnConv2d`` (a conv followed by any attention module, SimAM's
authors' form), mmcv's conv layers. A layer whose output is normalised and activated already
(its class sets ``includes_norm_act = True``, as ``mmattn.SKConv``) stands for the conv *and*
the norm and activation after it: the block has no ``bn2`` (``bn1`` for conv1) and skips that
activation. Without a slot, a backbone is the original, key for key and output for output.
"""
import inspect
from typing import Dict, List, Optional, Sequence, Tuple

from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..utils import DropInError, MissingKeyError

# what the slot gives a layer: the replaced conv's arguments
CONV_ARGS = ('in_channels', 'out_channels', 'kernel_size', 'stride', 'padding', 'dilation',
             'groups', 'bias')
CONV_LIKE = ('a conv-like layer: one built as Layer(in_channels, out_channels, kernel_size, '
             'stride=..., padding=..., dilation=..., groups=..., bias=...) with the arguments of '
             'the conv it replaces, e.g. mmattn.SKConv, or '
             "dict(type='mmattn.AttnConv2d', attention=dict(type='mmattn.SimAM')) for a conv "
             'followed by an attention module')


def conv_like_problem(cls) -> Optional[str]:
    """Why ``cls`` cannot fill a conv slot (the conv arguments it does not take), or None."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return None  # no introspectable signature: let the call decide
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    missing = [a for a in CONV_ARGS if a not in params]
    if not missing:
        return None
    if isinstance(cls, type) and issubclass(cls, BaseAttention) and cls.is_plugin:
        return (f'it is an attention module (in_channels in, the same shape out), which takes '
                f'no {", ".join(missing)}; put it after a conv with '
                f"dict(type='mmattn.AttnConv2d', attention=dict(type='mmattn.{cls.__name__}'))"
                f', or use it as a plugin')
    return f'its constructor takes no {", ".join(missing)}'


def _lookup(type_name, where: str, takes: str = f'a conv slot takes {CONV_LIKE}'):
    """The registered class of ``type_name``; refused with ``where`` and what is taken."""
    if isinstance(type_name, type):
        return type_name
    if not isinstance(type_name, str):
        raise DropInError(f'{where}: "type" must be a registered layer name, got '
                          f'{type_name!r}')
    try:
        cls = MODELS.get(type_name)
    except KeyError as err:  # mmattn's scope says what it has
        raise DropInError(f'{where}: {err.args[0]} ({takes})') from None
    if cls is None:
        raise DropInError(f'{where}: {type_name!r} is not registered (neither in mmattn\'s '
                          f'scope nor in mmengine\'s root registry, where mmcv\'s conv layers '
                          f'are); {takes}')
    return cls


def check_conv_cfg(cfg, where: str) -> type:
    """Check a conv slot's config before anything is built; return the layer class.

    Refuses, naming ``where``: a config that is not a dict or has no ``type``, a type that is
    not registered or not conv-like, a key that sets one of the block's arguments
    (:data:`CONV_ARGS`), and a key the layer's constructor does not take."""
    if not isinstance(cfg, dict):
        raise DropInError(f'{where} must be a dict with a "type" (e.g. '
                          f"dict(type='mmattn.SKConv')), got {cfg!r}")
    if 'type' not in cfg:
        raise MissingKeyError(f'{where} needs a "type" (e.g. dict(type=\'mmattn.SKConv\')), '
                              f'got keys {sorted(cfg)}')
    cls = _lookup(cfg['type'], where)
    name = getattr(cls, '__name__', repr(cls))
    problem = conv_like_problem(cls)
    if problem:
        raise DropInError(f'{where}: {name} is not conv-like: {problem}. A conv slot takes '
                          f'{CONV_LIKE}')
    given = [k for k in cfg if k in CONV_ARGS]
    if given:
        raise DropInError(f'{where}: {given} come from the conv the layer replaces (its '
                          f'{", ".join(CONV_ARGS)}); leave them out of the config')
    params = inspect.signature(cls).parameters
    required = [n for n, p in params.items() if p.default is p.empty and n not in CONV_ARGS
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in cfg]
    if required:
        raise DropInError(f'{where}: {name} needs {", ".join(required)} in its config')
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(k for k in cfg if k != 'type' and k not in params)
        if unknown:
            takes = [p for p in params if p not in CONV_ARGS and p != 'self']
            raise DropInError(f'{where}: {name} takes no argument {", ".join(unknown)} '
                              f'(besides the conv\'s arguments it takes: '
                              f'{", ".join(takes) or "nothing"})')
    return cls


def check_slot_stages(stages, num_stages: int, where: str) -> List[bool]:
    """One bool per stage (``None``: every stage), or a clear error."""
    if stages is None:
        return [True] * num_stages
    if isinstance(stages, (str, dict)) or not isinstance(stages, Sequence) \
            or len(stages) != num_stages:
        raise DropInError(f'{where} must have one bool per stage ({num_stages} stages), got '
                          f'{stages!r}')
    if not all(isinstance(s, bool) or s in (0, 1) for s in stages):
        raise DropInError(f'{where} must hold bools, got {stages!r}')
    return [bool(s) for s in stages]


def includes_norm_act(layer_or_cls) -> bool:
    """Whether the layer's output is normalised and activated already (see the module doc)."""
    return bool(getattr(layer_or_cls, 'includes_norm_act', False))


def _square(value):
    """An nn.Conv2d tuple argument as an int where both sides agree."""
    if isinstance(value, tuple) and len(set(value)) == 1:
        return value[0]
    return value


def build_slot_layer(cfg: dict, conv: nn.Module, norm_cfg: Optional[dict],
                     where: str) -> nn.Module:
    """The layer of ``cfg`` built with the arguments of ``conv`` (the conv it replaces)."""
    cls = check_conv_cfg(cfg, where)
    try:
        args = {a: _square(getattr(conv, a)) for a in CONV_ARGS[:-1]}
    except AttributeError as err:
        raise DropInError(f'{where}: the conv to replace ({type(conv).__name__}) has no '
                          f'{err.name!r}: not a conv layer') from None
    args['bias'] = getattr(conv, 'bias', None) is not None
    kwargs = {k: v for k, v in cfg.items() if k != 'type'}
    params = inspect.signature(cls).parameters
    if norm_cfg is not None and 'norm_cfg' in params and 'norm_cfg' not in kwargs:
        kwargs['norm_cfg'] = dict(norm_cfg)
    try:
        return cls(**args, **kwargs)
    except (TypeError, ValueError) as err:
        # the layer refuses an argument (or the conv's): say where, keep the exception's type
        message = (f'{where}: {cls.__name__}({", ".join(f"{k}={v!r}" for k, v in args.items())}'
                   f', ...) refused its arguments: {err}')
        try:
            new = type(err)(message)
        except Exception:  # noqa: B902  (an exception type with another constructor)
            raise err
        raise new from err


def attention_in(layer: nn.Module) -> List[nn.Module]:
    """The outermost mmattn attention modules of a slot layer (the layer itself for SKConv,
    ``attn`` for AttnConv2d): what a plain ResNet checkpoint does not hold."""
    if isinstance(layer, BaseAttention):
        return [layer]
    found: Dict[str, nn.Module] = {}
    for name, m in layer.named_modules():
        if isinstance(m, BaseAttention) and not any(name.startswith(o + '.') for o in found):
            found[name] = m
    return list(found.values())


def resolve_conv_slots(slots: Dict[str, Tuple[Optional[dict], Optional[Sequence]]],
                       num_stages: int, bottleneck: bool,
                       dcn_stages: Optional[Sequence[bool]], owner: str) -> Dict[str, list]:
    """Check the conv slot arguments of a backbone; return ``slot -> [cfg or None per stage]``.

    ``slots``: ``{'conv1': (conv1_cfg, stage_with_conv1_cfg), 'conv2': (...)}``;
    ``dcn_stages``: the stages mmdet's ``dcn`` replaces conv2 in (None: none)."""
    layout = {}
    for slot, (cfg, stages) in slots.items():
        arg = f'{owner}: {slot}_cfg'
        if cfg is None:
            if stages is not None:
                raise DropInError(f'{owner}: stage_with_{slot}_cfg={stages!r} is given '
                                  f'without {slot}_cfg (the layer to put in those stages)')
            layout[slot] = [None] * num_stages
            continue
        check_conv_cfg(cfg, arg)
        on = check_slot_stages(stages, num_stages, f'{owner}: stage_with_{slot}_cfg')
        if slot == 'conv1' and bottleneck and any(on):
            raise DropInError(f'{arg}: a Bottleneck\'s conv1 is a 1x1 conv; conv1_cfg replaces '
                              f'the first 3x3 conv of a BasicBlock (ResNet-18/34). The '
                              f'Bottleneck\'s 3x3 conv is conv2: use conv2_cfg')
        if slot == 'conv2' and dcn_stages is not None:
            both = [i for i, (a, b) in enumerate(zip(on, dcn_stages)) if a and b]
            if both:
                raise DropInError(f'{arg}: dcn replaces conv2 in stages {both} too; give each '
                                  f'stage one of them (stage_with_dcn, stage_with_conv2_cfg)')
        layout[slot] = [cfg if o else None for o in on]
    return layout


@MODELS.register_module()
class AttnConv2d(nn.Conv2d):
    """A conv followed by an attention module on its output: ``attention(conv(x))``.

    The conv-like form of an attention module that runs right after a conv, before the norm
    that follows it: SimAM's authors' ResNet (ZjjConan/SimAM ``networks/imagenet/resnet.py``)
    wraps each block's 3x3 conv as ``nn.Sequential(conv2, simam_module(width))``, so SimAM
    sees the conv's output before ``bn2``::

        conv2_cfg=dict(type='mmattn.AttnConv2d', attention=dict(type='mmattn.SimAM'))

    It is an ``nn.Conv2d`` (same arguments, same ``weight``/``bias``, same initialisation by a
    backbone's ``Kaiming`` init of ``Conv2d`` layers): a plain ResNet checkpoint fills the
    conv, and the attention module's tensors are under ``attn``.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
        padding_mode: ``nn.Conv2d``'s.
        attention (dict): the attention module's config (any registered plugin of mmattn,
            e.g. ``dict(type='mmattn.SimAM', e_lambda=0.1)``), built with
            ``in_channels=out_channels``; required, keyword only.
    """

    includes_norm_act = False
    # the forms the conformance suite runs (tests/test_models/test_conformance.py)
    variants = {'SimAM': dict(attention=dict(type='mmattn.SimAM')),
                'SE': dict(attention=dict(type='mmattn.SE'))}

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode='zeros', *, attention):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=padding, dilation=dilation, groups=groups, bias=bias,
                         padding_mode=padding_mode)
        from ..factory import attention_classes, build_attention
        if not isinstance(attention, dict) or 'type' not in attention:
            raise ValueError(f'AttnConv2d: attention must be an attention module\'s config '
                             f"with a \"type\", e.g. dict(type='mmattn.SimAM'), got "
                             f'{attention!r}')
        cls = _lookup(attention['type'], 'AttnConv2d: attention',
                      'it takes an mmattn attention module that keeps its input\'s shape')
        if cls not in attention_classes().values() or not cls.is_plugin:
            raise ValueError(f'AttnConv2d: attention must be an mmattn attention module that '
                             f'keeps its input\'s shape (a plugin), got {attention["type"]!r}')
        self.attn = build_attention(attention, in_channels=out_channels)

    def forward(self, x):
        return self.attn(super().forward(x))

    def init_weights(self):
        # mmengine's BaseModule reaches children through init_weights; this conv is not one,
        # so it passes the call on (the attention module's own init after the backbone's)
        if hasattr(self.attn, 'init_weights'):
            self.attn.init_weights()
