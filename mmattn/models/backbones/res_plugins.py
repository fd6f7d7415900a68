"""Plugins in any ResNet block, in chosen blocks, and between stages.

mmdet's and mmseg's ResNets take ``plugins=[dict(cfg=..., position=..., stages=...)]`` but

- their ``BasicBlock`` (ResNet-18/34) asserts ``plugins is None``;
- mmseg 1.2.2's ``Bottleneck.forward_plugin`` feeds every plugin the block's tensor and keeps
  the last output only, so of two plugins at one position only the last one runs (mmdet fixed
  this; mmseg did not);
- a plugin goes into every block of a selected stage, while several authors place their module
  in some blocks only (GSoP: the last block of each stage; Non-local: every other block of
  res3/res4), and some between stages (BAM, residual attention);
- a plugin can only sit inside the residual branch, while Non-local's authors add their block
  after a residual block's output (after the sum and its ReLU: ``res_stage_nonlocal`` in
  facebookresearch/video-nonlocal-net ``lib/models/resnet_helper.py``).

The mixins here add what is missing without touching the original blocks' layers, so a backbone
without plugins keeps the original's parameters, state-dict keys and outputs. They also hold
the conv slot (``conv_slot.py``): a registered conv-like layer in place of a block's ``conv2``
(``conv1`` of a BasicBlock), for modules that their authors put in place of the 3x3 conv or
between it and its norm (SK, SimAM).

Plugin spec (one dict per plugin, in the backbone's ``plugins`` list):

- ``cfg`` (dict, required): the plugin's config; it is built with ``in_channels`` set to the
  width at its position. ``cfg['postfix']`` names it as in mmdet (``abbr + postfix``).
- ``position`` (str, required): ``'after_conv1'``, ``'after_conv2'``, ``'after_conv3'`` (inside
  the residual branch, as in mmdet) or ``'after_block'``: on the block's output, after the
  residual addition and its ReLU, so the next block (or the stage's output) sees the
  plugin's result. ``after_block`` plugins get the block's output width.
- ``stages`` (tuple of bool, optional): the stages that get it (default: all).
- ``blocks`` (optional): which blocks of those stages: ``None``/``'all'`` (every block),
  ``'last'``, ``'first'``, or one entry per stage, each a tuple of block indices (negative
  indices count from the end) or ``'all'``/``'last'``/``'first'``, e.g.
  ``blocks=((), (1, 3), (1, 3, 5), ())``.

Stage-plugin spec (the backbone's ``stage_plugins`` list): ``dict(cfg=..., stages=...)``; the
module is applied to a stage's output (``in_channels`` = that stage's output width), before
the output goes on to the next stage and into the backbone's outputs.

``frozen_stages`` freezes the ResNet's own layers of those stages; the attention modules in
them (block and stage plugins) stay trainable unless ``freeze_plugins=True``. mmdet's and
mmseg's ResNets freeze a stage whole, plugins included: with a plain ResNet checkpoint
(``torchvision://resnet50``) and mmdet's ``frozen_stages=1``, every module in ``layer1`` would
stay at its initialisation for the whole run, a network no author trained. ``freeze_plugins``
is for checkpoints that include the attention weights. Plugin norms follow ``norm_eval`` as
the backbone's own norms do.

A bad plugin spec raises :class:`~mmattn.models.utils.DropInError`: a ``ValueError`` that is
also the ``AssertionError`` mmdet's and mmseg's ResNets raise for a ``stages`` of the wrong
length or an unknown ``position``. A spec without ``cfg``, or a ``cfg`` without ``type``, raises
:class:`~mmattn.models.utils.MissingKeyError`, a ``DropInError`` that is also the ``KeyError``
the originals raise there.

Several plugins at one position run in the order of the ``plugins`` list. A block's plugins are
built position by position (after_conv1's, then after_conv2's, then after_conv3's, as in mmdet,
then after_block's; each in list order). A plugin's name, its key in checkpoints, is mmcv's:
the type's abbreviation + ``cfg['postfix']``. Two plugins of one name in a block (at one
position or at two) or among one stage's stage plugins are refused, as mmdet's and mmseg's
ResNets refuse them (``duplicate plugin``): give the second a ``postfix`` (``'_2'``).
"""
import copy
import inspect
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.utils.checkpoint as cp
from mmcv.cnn import build_plugin_layer
from mmengine.model import Sequential

from ..utils import DropInError, MissingKeyError
from .conv_slot import (attention_in, build_slot_layer, includes_norm_act,
                        resolve_conv_slots)

# the first three are mmdet's, in the residual branch; after_block follows the block's ReLU
POSITIONS = ('after_conv1', 'after_conv2', 'after_conv3', 'after_block')
PLUGIN_KEYS = ('cfg', 'position', 'stages', 'blocks')
STAGE_PLUGIN_KEYS = ('cfg', 'stages')
_BLOCK_WORDS = ('all', 'last', 'first')


def _check_cfg(spec: dict, where: str) -> None:
    # a missing key is a KeyError, as in mmdet's and mmseg's ResNets (spec['cfg'], then mmcv's
    # build_plugin_layer for the "type")
    if 'cfg' not in spec:
        raise MissingKeyError(f'{where}: the plugin spec needs a "cfg" (the module\'s config, '
                              f"e.g. cfg=dict(type='mmattn.SE')), got keys {sorted(spec)}")
    cfg = spec['cfg']
    if not isinstance(cfg, dict):
        raise DropInError(f'{where}: "cfg" must be a dict with a "type", got {cfg!r}')
    if 'type' not in cfg:
        raise MissingKeyError(f'{where}: "cfg" needs a "type" (a module name, e.g. '
                              f"dict(type='mmattn.SE')), got keys {sorted(cfg)}: {cfg!r}")


def _check_stages(stages, num_stages: int, where: str) -> List[bool]:
    if stages is None:
        return [True] * num_stages
    if isinstance(stages, str) or len(stages) != num_stages:
        raise DropInError(f'{where}: "stages" must have one bool per stage ({num_stages}), '
                         f'got {stages!r}')
    return [bool(s) for s in stages]


def _block_indices(entry, num_blocks: int, where: str) -> List[int]:
    """Indices of the blocks one stage's ``blocks`` entry selects, sorted, no repeats."""
    if entry is None or entry == 'all':
        return list(range(num_blocks))
    if entry == 'last':
        return [num_blocks - 1]
    if entry == 'first':
        return [0]
    if isinstance(entry, str) or not isinstance(entry, Sequence):
        raise DropInError(f'{where}: a stage\'s blocks must be a tuple of block indices or one '
                         f'of {_BLOCK_WORDS}, got {entry!r}')
    picked = set()
    for j in entry:
        if isinstance(j, bool) or not isinstance(j, int) or not -num_blocks <= j < num_blocks:
            raise DropInError(f'{where}: block index {j!r} is out of range for a stage of '
                             f'{num_blocks} blocks (0..{num_blocks - 1}, or negative from '
                             f'the end)')
        picked.add(j % num_blocks)
    return sorted(picked)


def resolve_block_plugins(plugins: Optional[Sequence[dict]], stage_blocks: Sequence[int],
                          owner: str = '') -> List[List[List[dict]]]:
    """Check a ``plugins`` list and say which plugins each block gets.

    Returns ``layout[stage][block]``: a list of ``dict(cfg=..., position=...)``, in the order
    of ``plugins``. ``owner`` (the backbone's class name) starts every error message.
    """
    lead = f'{owner}: ' if owner else ''
    num_stages = len(stage_blocks)
    layout = [[[] for _ in range(n)] for n in stage_blocks]
    if plugins is None:
        return layout
    if isinstance(plugins, dict) or not isinstance(plugins, Sequence):
        raise TypeError(f'{lead}plugins must be a list of dicts, got {type(plugins).__name__}')
    for k, spec in enumerate(plugins):
        where = f'{lead}plugins[{k}]'
        if not isinstance(spec, dict):
            raise TypeError(f'{where} must be a dict, got {type(spec).__name__}')
        unknown = sorted(set(spec) - set(PLUGIN_KEYS))
        if unknown:
            raise DropInError(f'{where}: unknown keys {unknown}; a plugin takes {PLUGIN_KEYS}')
        _check_cfg(spec, where)
        position = spec.get('position')
        if position not in POSITIONS:
            raise DropInError(f'{where}: "position" must be one of {POSITIONS}, '
                             f'got {position!r}')
        stages = _check_stages(spec.get('stages'), num_stages, where)
        blocks = spec.get('blocks')
        per_stage = blocks is None or isinstance(blocks, str)
        if per_stage and blocks not in (None, ) + _BLOCK_WORDS:
            raise DropInError(f'{where}: "blocks" must be None, one of {_BLOCK_WORDS} or one '
                             f'entry per stage, got {blocks!r}')
        if not per_stage and (not isinstance(blocks, Sequence) or len(blocks) != num_stages):
            raise DropInError(f'{where}: "blocks" must have one entry per stage '
                             f'({num_stages}), got {blocks!r}')
        for i, num_blocks in enumerate(stage_blocks):
            entry = blocks if per_stage else blocks[i]
            idx = _block_indices(entry, num_blocks, f'{where}, stage {i}')
            if not stages[i]:
                if not per_stage and idx:
                    raise DropInError(f'{where}: "blocks" selects blocks {idx} of stage {i}, '
                                     f'which "stages" switches off')
                continue
            for j in idx:
                layout[i][j].append(dict(cfg=spec['cfg'], position=position))
    return layout


def resolve_stage_plugins(stage_plugins: Optional[Sequence[dict]], num_stages: int,
                          owner: str = '') -> List[List[dict]]:
    """Check a ``stage_plugins`` list; return the plugin configs of each stage, in order.
    ``owner`` (the backbone's class name) starts every error message."""
    lead = f'{owner}: ' if owner else ''
    layout = [[] for _ in range(num_stages)]
    if stage_plugins is None:
        return layout
    if isinstance(stage_plugins, dict) or not isinstance(stage_plugins, Sequence):
        raise TypeError(f'{lead}stage_plugins must be a list of dicts, '
                        f'got {type(stage_plugins).__name__}')
    for k, spec in enumerate(stage_plugins):
        where = f'{lead}stage_plugins[{k}]'
        if not isinstance(spec, dict):
            raise TypeError(f'{where} must be a dict, got {type(spec).__name__}')
        unknown = sorted(set(spec) - set(STAGE_PLUGIN_KEYS))
        if unknown:
            raise DropInError(f'{where}: unknown keys {unknown}; a stage plugin takes '
                             f'{STAGE_PLUGIN_KEYS} (it sits between stages, so it has no '
                             f'position or blocks)')
        _check_cfg(spec, where)
        for i, on in enumerate(_check_stages(spec.get('stages'), num_stages, where)):
            if on:
                layout[i].append(spec['cfg'])
    return layout


def _build_named(owner: torch.nn.Module, cfg: dict, in_channels: int, taken=()):
    """Build one plugin, named as mmcv names it: its abbreviation + ``cfg['postfix']``.

    A name already used in ``owner`` (a block: by another plugin or by one of its layers) or
    in ``taken`` (the names of a stage's plugins) is refused, as mmdet's and mmseg's ResNets
    refuse it (``duplicate plugin``): the name is the plugin's key in checkpoints, so the
    config says it, with a ``postfix``.
    """
    cfg = copy.deepcopy(dict(cfg))
    postfix = cfg.pop('postfix', '')
    name, layer = build_plugin_layer(cfg, postfix=postfix, in_channels=in_channels)
    if hasattr(owner, name) or name in taken:
        where = (f'in an {type(owner).__name__}: the block already has a plugin or layer of '
                 f'that name' if isinstance(owner, PluginBlockMixin) else
                 'among the stage_plugins of one stage')
        raise DropInError(
            f"duplicate plugin {name!r} {where} (a plugin is named by its type's abbreviation "
            f'+ postfix, and the name is its key in checkpoints). Give each plugin of one type '
            f"its own postfix: cfg=dict(type={cfg['type']!r}, postfix='_2') is named "
            f"{name + '_2'!r}. mmdet's and mmseg's ResNets refuse this too.")
    return name, layer


def drop_in_signature(cls: type) -> inspect.Signature:
    """The constructor signature of a drop-in: the original's parameters, in its order, then
    the keyword-only parameters the drop-in's ``__init__``s add (the mixin's, and any a
    subclass adds as ``def __init__(self, *args, extra=None, **kwargs)``), before
    ``**kwargs``."""
    theirs = list(inspect.signature(cls.original_class().__init__).parameters.values())[1:]
    names = {q.name for q in theirs}
    ours = []
    for c in cls.__mro__:
        if issubclass(c, AttnResNetMixin) and '__init__' in vars(c):
            for p in inspect.signature(c.__init__).parameters.values():
                if p.kind is p.KEYWORD_ONLY and p.name not in names:
                    names.add(p.name)
                    ours.append(p)
    var_kw = [p for p in theirs if p.kind is p.VAR_KEYWORD]
    head = [p for p in theirs if p.kind is not p.VAR_KEYWORD]
    return inspect.Signature(head + ours + var_kw)


class PluginBlockMixin:
    """Plugins for a ResNet block, added after the block is built.

    The original block is built without plugins, so its layers and their order are untouched;
    :meth:`attach_plugins` then adds the plugin modules after them (where mmdet's Bottleneck
    puts them too) and sets the attributes the block's ``forward`` reads. :meth:`forward` runs
    the original block (:meth:`forward_residual`), then the ``after_block`` plugins.
    """

    # the convs a conv slot replaced by a layer that includes the norm and activation after
    # it (their norms are gone; see conv_slot.py)
    norm_act_convs: Tuple[str, ...] = ()

    def plugin_channels(self, position: str) -> int:
        raise NotImplementedError

    def replace_conv(self, slot: str, layer: torch.nn.Module) -> None:
        """Put ``layer`` in place of ``conv1``/``conv2`` (same key, same place in the
        state dict). A layer that includes its norm and activation takes the norm's place
        too: ``bn1``/``bn2`` goes, and a zero-init of that norm in the block's init_cfg
        (mmdet's ``zero_init_residual``) with it."""
        setattr(self, slot, layer)
        if not includes_norm_act(layer):
            return
        norm_name = getattr(self, f'norm{slot[-1]}_name')
        delattr(self, norm_name)
        self.norm_act_convs = tuple(self.norm_act_convs) + (slot, )
        override = (self.init_cfg or {}).get('override') if isinstance(self.init_cfg,
                                                                        dict) else None
        # mmdet and mmseg name it by the block's property (norm2) for its layer (bn2)
        if isinstance(override, dict) and override.get('name') in (norm_name,
                                                                   f'norm{slot[-1]}'):
            self.init_cfg = None

    def slot_attention_modules(self) -> List[torch.nn.Module]:
        """The attention modules in this block's conv slots (a replaced conv that is one, or
        the attention module after an AttnConv2d's conv)."""
        return [m for slot in getattr(self, 'conv_slots', ())
                for m in attention_in(getattr(self, slot))]

    def attach_plugins(self, plugins: Sequence[dict]) -> None:
        """Build ``plugins`` (``dict(cfg=..., position=...)``, in running order) into the block."""
        names: Dict[str, List[str]] = {p: [] for p in POSITIONS}
        # built position by position, as mmdet's Bottleneck does: same module order, same keys
        for position in POSITIONS:
            for spec in plugins:
                if spec['position'] != position:
                    continue
                name, layer = _build_named(self, spec['cfg'], self.plugin_channels(position))
                self.add_module(name, layer)
                names[position].append(name)
        self.plugins = list(plugins)
        self.with_plugins = bool(plugins)
        self.after_conv1_plugin_names = names['after_conv1']
        self.after_conv2_plugin_names = names['after_conv2']
        self.after_conv3_plugin_names = names['after_conv3']
        self.after_block_plugin_names = names['after_block']

    def forward_plugin(self, x, plugin_names):
        # Chained: each plugin takes the previous one's output (mmseg 1.2.2 feeds each the
        # block's tensor and keeps only the last output).
        for name in plugin_names:
            x = getattr(self, name)(x)
        return x

    def forward_residual(self, x):
        """The block itself: residual branch (with its plugins) + shortcut, then the ReLU."""
        return super().forward(x)

    def forward(self, x):
        out = self.forward_residual(x)
        names = getattr(self, 'after_block_plugin_names', None)
        if not names:
            return out
        # with_cp checkpoints these plugins too, as mmdet checkpoints the in-branch ones:
        # a Non-local block's attention map is what costs memory. (Like the block's own norms
        # under with_cp, a plugin's BN then updates its running statistics twice per step.)
        if self.with_cp and out.requires_grad:
            return cp.checkpoint(self.forward_plugin, out, names, use_reentrant=False)
        return self.forward_plugin(out, names)


class BottleneckPluginMixin(PluginBlockMixin):
    """Bottleneck: the original ``forward`` already calls the plugins at the three in-branch
    positions; ``after_block`` plugins get its output width, ``planes * expansion``."""

    def plugin_channels(self, position):
        if position in ('after_conv3', 'after_block'):
            return self.planes * self.expansion
        return self.planes

    def forward_residual(self, x):
        if not self.norm_act_convs:
            return super().forward_residual(x)

        # the original's forward, without norm2 and the ReLU after it: conv2 (an SK unit)
        # ends with its own norms and activations
        def _inner_forward(x):
            identity = x
            out = self.relu(self.norm1(self.conv1(x)))
            out = self.forward_plugin(out, getattr(self, 'after_conv1_plugin_names', ()))
            out = self.conv2(out)
            out = self.forward_plugin(out, getattr(self, 'after_conv2_plugin_names', ()))
            out = self.norm3(self.conv3(out))
            out = self.forward_plugin(out, getattr(self, 'after_conv3_plugin_names', ()))
            if self.downsample is not None:
                identity = self.downsample(x)
            return out + identity

        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(_inner_forward, x, use_reentrant=False)
        else:
            out = _inner_forward(x)
        return self.relu(out)


class BasicBlockPluginMixin(PluginBlockMixin):
    """BasicBlock (ResNet-18/34) with plugins.

    Positions in the two-conv block:

    - ``after_conv1``: after conv1 -> norm1 -> ReLU (as in the Bottleneck);
    - ``after_conv2``: after conv2 -> norm2, before the residual addition;
    - ``after_conv3``: the same point, after the ``after_conv2`` plugins. The block's second
      conv is its last, as conv3 is the Bottleneck's: a module that its authors put at the end
      of the residual branch (SE, CBAM, ...) keeps its ``after_conv3`` config on ResNet-18/34;
    - ``after_block``: on the block's output, after the residual addition and ReLU (as for
      the Bottleneck).

    Every plugin here gets ``in_channels = planes``.

    A conv slot layer that includes its norm and activation (``mmattn.SKConv``) stands for
    ``conv1 -> norm1 -> ReLU`` in conv1 (timm's skresnet18/34), or for ``conv2 -> norm2`` in
    conv2 (its activation then runs where the block has none).
    """

    def plugin_channels(self, position):
        return self.conv2.out_channels

    def forward_residual(self, x):
        if not (self.norm_act_convs or any(getattr(self, f'{p}_plugin_names', None)
                                           for p in POSITIONS[:3])):
            return super().forward_residual(x)

        def _inner_forward(x):
            identity = x
            out = self.conv1(x)
            if 'conv1' not in self.norm_act_convs:  # an SK unit has its norms and ReLUs
                out = self.relu(self.norm1(out))
            out = self.forward_plugin(out, getattr(self, 'after_conv1_plugin_names', ()))
            out = self.conv2(out)
            if 'conv2' not in self.norm_act_convs:
                out = self.norm2(out)
            out = self.forward_plugin(out, getattr(self, 'after_conv2_plugin_names', ()))
            out = self.forward_plugin(out, getattr(self, 'after_conv3_plugin_names', ()))
            if self.downsample is not None:
                identity = self.downsample(x)
            # not in place: a plugin's output may be needed by autograd
            return out + identity

        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(_inner_forward, x, use_reentrant=False)
        else:
            out = _inner_forward(x)
        return self.relu(out)


class AttnResNetMixin:
    """Per-block plugins on every block type, and plugins between stages, for a ResNet.

    Put it before mmdet's or mmseg's ``ResNet`` (or any class derived from it) in the bases
    and set ``attn_blocks`` (original block class -> plugin-capable subclass). The
    constructor passes its positional arguments on to the original's, so the original's
    positional order holds (mmdet's ``ResNet(depth, in_channels, stem_channels, ...)``:
    ``AttnResNet(18, 3)`` is ``ResNet(18, 3)`` with plugins possible); the arguments it adds,
    ``stage_plugins``, ``freeze_plugins`` and the conv slot's ``conv1_cfg``,
    ``stage_with_conv1_cfg``, ``conv2_cfg``, ``stage_with_conv2_cfg`` (``conv_slot.py``), are
    keyword-only. A subclass that adds its own
    does so the same way (``def __init__(self, *args, extra=None, **kwargs)``, then
    ``super().__init__(*args, **kwargs)``). Each subclass gets a ``__signature__`` that shows
    the original's parameters followed by these.
    """

    attn_blocks: Dict[type, type] = {}
    _conv_slot_layout: Dict[str, list] = {}
    # read by the original ResNet.__init__'s call of _freeze_stages, before
    # _init_stage_plugins sets the configured value and freezes again
    freeze_plugins: bool = False

    def __init__(self, *args, stage_plugins=None, freeze_plugins=False, conv1_cfg=None,
                 stage_with_conv1_cfg=None, conv2_cfg=None, stage_with_conv2_cfg=None,
                 **kwargs):
        # checked before anything is built; make_res_layer reads the layout
        self._conv_slot_layout = self._resolve_conv_slots(
            args, kwargs, dict(conv1=(conv1_cfg, stage_with_conv1_cfg),
                               conv2=(conv2_cfg, stage_with_conv2_cfg)))
        super().__init__(*args, **kwargs)
        self.conv1_cfg, self.stage_with_conv1_cfg = conv1_cfg, stage_with_conv1_cfg
        self.conv2_cfg, self.stage_with_conv2_cfg = conv2_cfg, stage_with_conv2_cfg
        self._init_stage_plugins(stage_plugins, freeze_plugins)

    @classmethod
    def _original_arguments(cls, args, kwargs) -> dict:
        """The original ResNet's arguments by name, defaults included, as its ``__init__``
        (and a subclass's, such as ResNeXt's ``groups`` first) binds ``args`` and
        ``kwargs``; empty where they do not bind (the original then says why)."""
        named = {}
        for c in cls.original_class().__mro__:
            if '__init__' not in vars(c):
                continue
            sig = inspect.signature(c.__init__)
            try:
                bound = sig.bind_partial(None, *args, **kwargs)
            except TypeError:
                return {}
            var_kw = None
            for p in list(sig.parameters.values())[1:]:
                if p.kind is p.VAR_KEYWORD:
                    var_kw = p.name
                elif p.kind is not p.VAR_POSITIONAL:
                    named.setdefault(p.name, bound.arguments.get(p.name, p.default))
            if 'depth' in sig.parameters or var_kw is None:
                return named
            args, kwargs = (), bound.arguments.get(var_kw, {})
        return named

    def _resolve_conv_slots(self, args, kwargs, slots) -> dict:
        """Check ``conv{1,2}_cfg`` and their stages against the ResNet's stages and block
        type (``conv_slot.resolve_conv_slots``); ``slot -> [cfg or None per stage]``."""
        owner = type(self).__name__
        if all(cfg is None and stages is None for cfg, stages in slots.values()):
            return {}
        named = self._original_arguments(args, kwargs)
        depth, num_stages = named.get('depth'), named.get('num_stages')
        arch = getattr(self, 'arch_settings', {})
        if depth not in arch or not isinstance(num_stages, int) or not 1 <= num_stages <= 4:
            return {}  # the original refuses these, saying why
        block = self.attn_blocks.get(arch[depth][0], arch[depth][0])
        bottleneck = not issubclass(block, BasicBlockPluginMixin)
        dcn_stages = None
        if named.get('dcn') is not None:
            dcn_stages = [bool(s) for s in named.get('stage_with_dcn') or ()]
        return resolve_conv_slots(slots, num_stages, bottleneck, dcn_stages, owner)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.__signature__ = drop_in_signature(cls)

    @classmethod
    def original_class(cls) -> type:
        """The OpenMMLab class this backbone extends (the first base that is not ours)."""
        return next(c for c in cls.__mro__ if not issubclass(c, AttnResNetMixin))

    def make_stage_plugins(self, plugins, stage_idx):
        # the original returns one plugin list for all blocks of a stage; return one per block
        if stage_idx == 0 or not hasattr(self, '_block_plugin_layout'):
            self._block_plugin_layout = resolve_block_plugins(plugins, self.stage_blocks,
                                                               type(self).__name__)
        return self._block_plugin_layout[stage_idx]

    def make_res_layer(self, **kwargs):
        block_plugins = kwargs.pop('plugins', None)
        block = kwargs['block']
        kwargs['block'] = self.attn_blocks.get(block, block)
        res_layer = super().make_res_layer(plugins=None, **kwargs)
        stage = len(self.res_layers)  # the original appends each stage after building it
        for slot, cfgs in getattr(self, '_conv_slot_layout', {}).items():
            if cfgs[stage] is None:
                continue
            for j, blk in enumerate(res_layer):
                where = f'{type(self).__name__}: {slot}_cfg, layer{stage + 1}.{j}.{slot}'
                layer = build_slot_layer(cfgs[stage], getattr(blk, slot),
                                         kwargs.get('norm_cfg'), where)
                blk.replace_conv(slot, layer)
                blk.conv_slots = tuple(getattr(blk, 'conv_slots', ())) + (slot, )
        if block_plugins:
            if not hasattr(kwargs['block'], 'attach_plugins'):
                raise TypeError(f'{type(self).__name__}: block {block.__name__} takes no '
                                f'plugins')
            for blk, specs in zip(res_layer, block_plugins):
                if specs:
                    blk.attach_plugins(specs)
        return res_layer

    def _init_stage_plugins(self, stage_plugins, freeze_plugins: bool = False) -> None:
        """Build the modules that refine each stage's output (call after ``ResNet.__init__``),
        and freeze the stages as ``frozen_stages`` and ``freeze_plugins`` say."""
        if not isinstance(freeze_plugins, bool):
            raise TypeError(f'{type(self).__name__}: freeze_plugins must be a bool, got '
                            f'{freeze_plugins!r}')
        self.freeze_plugins = freeze_plugins
        self.stage_plugins = stage_plugins
        layout = resolve_stage_plugins(stage_plugins, len(self.res_layers),
                                       type(self).__name__)
        self.stage_plugin_layers: List[Optional[str]] = []
        for i, cfgs in enumerate(layout):
            if not cfgs:
                self.stage_plugin_layers.append(None)
                continue
            channels = self.base_channels * 2**i * self.block.expansion
            layers = OrderedDict()
            for cfg in cfgs:
                name, layer = _build_named(torch.nn.Module(), cfg, channels, taken=layers)
                layers[name] = layer
            # mmengine's Sequential, so that init_weights reaches the plugins (their authors'
            # special inits run after the backbone's Kaiming init)
            layer_name = f'{self.res_layers[i]}_attn'
            self.add_module(layer_name, Sequential(layers))
            self.stage_plugin_layers.append(layer_name)
        self._freeze_stages()

    def stage_attention_modules(self, stage: int) -> List[torch.nn.Module]:
        """The attention modules of stage ``stage`` (1-based, as ``layer{stage}``): those in
        its blocks' conv slots, its blocks' plugins, then its stage plugin."""
        modules = [m for block in getattr(self, f'layer{stage}')
                   for m in block.slot_attention_modules()]
        modules += [getattr(block, name) for block in getattr(self, f'layer{stage}')
                    for position in POSITIONS
                    for name in getattr(block, f'{position}_plugin_names', None) or ()]
        stage_layer = self._modules.get(f'layer{stage}_attn')
        return modules + ([stage_layer] if stage_layer is not None else [])

    def init_weights(self):
        first = not getattr(self, '_is_init', False)  # mmengine inits a module once
        if not first:
            super().init_weights()
            return
        from mmattn.utils.pretrained import AttentionLoadRecorder, report_attention_missing

        # A plain ResNet checkpoint (torchvision's, open-mmlab's) loads without error and
        # leaves every attention module at its random initialisation; mmengine lists the
        # missing keys one by one among all others. Say it per module type, with the
        # converter that writes a checkpoint holding them; the recorder sees which modules
        # mmengine's load filled, so the checkpoint is read once.
        with AttentionLoadRecorder(self) as recorder:
            super().init_weights()
        report_attention_missing(self, loads=recorder.loads)
        self._attention_init_reported = True

    def train(self, mode: bool = True):
        # mmdet's and mmseg's ResNet.train return None; nn.Module's contract (and chains such
        # as ``backbone.to(device).train()``) want the module
        super().train(mode)
        return self

    def _freeze_stages(self):
        frozen = self.frozen_stages
        if self.freeze_plugins:
            super()._freeze_stages()
            # a stage plugin belongs to the stage whose output it refines, as in-block plugins
            # belong to their stage in mmdet
            for i in range(1, frozen + 1):
                m = self._modules.get(f'layer{i}_attn')
                if m is not None:
                    m.eval()
                    for param in m.parameters():
                        param.requires_grad = False
            return
        # the original freezes the stem, then each frozen layer whole: let it do the stem,
        # then freeze the layers' own parameters around their attention modules
        self.frozen_stages = min(frozen, 0)
        try:
            super()._freeze_stages()
        finally:
            self.frozen_stages = frozen
        for i in range(1, frozen + 1):
            attention = self.stage_attention_modules(i)
            trainable = {id(p) for m in attention for p in m.parameters()}
            layer = getattr(self, f'layer{i}')
            layer.eval()
            for param in layer.parameters():
                if id(param) not in trainable:
                    param.requires_grad = False
            for m in attention:
                m.train(self.training)

    def forward(self, x):
        if not any(getattr(self, 'stage_plugin_layers', ())):
            return super().forward(x)
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.relu(self.norm1(self.conv1(x)))
        x = self.maxpool(x)
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            if self.stage_plugin_layers[i] is not None:
                x = getattr(self, self.stage_plugin_layers[i])(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
