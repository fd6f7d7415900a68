"""Shared pieces of the checkpoint converters: one format per source layout, one key mapper.

A format (:class:`ConverterFormat`) turns a released ImageNet checkpoint (a classifier's state
dict in its authors' or timm's layout) into the state dict of one of our backbones
(``mmattn.AttnResNet``, ``AttnResNeXt``, ...) with the matching ``plugins=``. Every format maps
its keys through a :class:`KeyMapper`, which records each source tensor it consumes (exactly
once), what it drops (the classifier head) and fills, and refuses, naming the keys, a source
tensor left over or one that is missing. :func:`check_against` then compares the result with
the state dict of the backbone the format's config builds: a backbone tensor left unfilled, a
tensor the backbone does not have, or a shape that differs is refused with its name.

Layout of our ResNets (mmdet's and mmseg's ``ResNet``, which keep torchvision's names):
``conv1``/``bn1`` (stem; with ``deep_stem`` the ``stem.{0,1,3,4,6,7}`` convs and norms),
``layer{i}.{j}.conv{1,2,3}`` / ``bn{1,2,3}``, ``layer{i}.{j}.downsample.{0,1}`` (with
``avg_down`` an ``AvgPool2d`` comes first: ``downsample.{1,2}``), and a block's plugins named
as mmcv names them, abbreviation + postfix: ``layer{i}.{j}.se`` for SE
(``mmattn/models/backbones/res_plugins.py``; a second plugin of one type in a block carries its
own ``postfix``, e.g. ``se_2``).
"""
import re
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch

# depth -> (bottleneck?, blocks per stage), as mmdet's ResNet.arch_settings
RESNET_ARCH = {
    18: (False, (2, 2, 2, 2)),
    34: (False, (3, 4, 6, 3)),
    50: (True, (3, 4, 6, 3)),
    101: (True, (3, 4, 23, 3)),
    152: (True, (3, 8, 36, 3)),
}
BN_TENSORS = ('weight', 'bias', 'running_mean', 'running_var')
# mmdet's deep stem: Sequential(conv, bn, relu, conv, bn, relu, conv, bn, relu)
DEEP_STEM_CONVS = ('stem.0', 'stem.3', 'stem.6')
DEEP_STEM_NORMS = ('stem.1', 'stem.4', 'stem.7')


class ConversionError(ValueError):
    """A checkpoint that a format cannot convert exactly; the message names the tensors."""


@dataclass
class Report:
    """What a conversion did: tensors mapped per kind, dropped and filled, with reasons."""
    counts: Counter = field(default_factory=Counter)
    dropped: List[Tuple[str, str]] = field(default_factory=list)
    filled: List[Tuple[str, str]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def lines(self) -> List[str]:
        out = [f'  {kind}: {n} tensors' for kind, n in sorted(self.counts.items())]
        out.append(f'  total mapped: {sum(self.counts.values())} tensors')
        for reasons, verb in ((self.dropped, 'dropped'), (self.filled, 'filled')):
            grouped: Dict[str, List[str]] = OrderedDict()
            for key, why in reasons:
                grouped.setdefault(why, []).append(key)
            for why, keys in grouped.items():
                out.append(f'  {verb} {len(keys)} ({why}): {short_list(keys)}')
        out.extend(f'  note: {n}' for n in self.notes)
        return out


# How the tests hold a converted backbone to its source network: the four stage outputs, float64,
# relative to each output's largest value. A deep network can amplify float rounding by itself
# (one in 1e-16 becomes one in 1e-9 or more, depending on its weights); there the bound is how
# far the source network moves when its input moves by 1e-15.
TOLERANCE = 1e-10
INPUT_NUDGE = 1e-15
NUDGE_FACTOR = 10
BOUND = (f'stage outputs within {TOLERANCE:g} of the source network\'s (float64, relative to '
         f'their largest value), or, where the network amplifies float rounding (deep networks '
         f'can, depending on their weights), within {NUDGE_FACTOR}x of how far the source '
         f'network itself moves when its input moves by {INPUT_NUDGE:g}')


@dataclass(frozen=True)
class Exactness:
    """What a format claims of its converted backbone against the source network (``--list``
    prints it; the converter tests enforce it), in eval and train mode, with mmattn's CPU fast
    paths on (the default) and off: :data:`BOUND`, unless

    Args:
        identical: the stage outputs are bit-identical to the source network's (the same
            operations in the same order).
        differs: the modes (``'train'``, ``'eval'``) in which the outputs are claimed not to
            be identical, where the network amplifies rounding; ``why`` says why.
        why: why they differ there.
    """
    identical: bool = False
    differs: Tuple[str, ...] = ()
    why: str = ''

    def lines(self) -> List[str]:
        if self.identical:
            return ['stage outputs identical to the source network\'s (float64, eval and '
                    'train mode, mmattn\'s CPU fast paths on or off): the same operations in '
                    'the same order']
        return [BOUND + ', in eval and train mode, fast paths on or off'
                + (f'; not identical in {" and ".join(self.differs)} mode: {self.why}'
                   if self.differs else '')]


@dataclass(frozen=True)
class ConverterFormat:
    """One source layout.

    Args:
        name: the command-line name (``convert.py NAME SRC DST``).
        description: the source network, in a line.
        published: where the weights are published (URLs, model names).
        backbone: depth -> the backbone config that the converted state dict loads into.
        convert: ``(src_state, depth) -> (dst_state, report)``; raises
            :class:`ConversionError` naming the tensors it cannot map.
        depths: the depths the format exists for.
        figures: published results of the source network, each citing its source.
        unsupported: source models of the same family whose layout our backbones cannot
            express, each with the reason (printed by ``--list``).
        networks: the names the converted networks are published under (timm model names,
            released file names), found in a checkpoint's file or folder name or metadata
            (``identify.py``); a file named as another format's network is refused, naming the
            format to use.
        lookalikes: ``(name, why)`` of networks that have exactly this format's tensors but
            compute something else: refused where the file or its name tells them apart;
            ``--list`` says what the user must check where nothing does.
        refused_networks: ``(name, why)`` of networks of the family our backbones cannot
            express (their tensors differ too; the name gives the clearer refusal).
        exactness: what the tests hold the converted backbone to.
        layer_prefix: the prefix of the source's ResNet stages (``'layer{}.'``).
    """
    name: str
    description: str
    published: str
    backbone: Callable[[int], dict]
    convert: Callable[[Mapping[str, torch.Tensor], int], Tuple[Dict[str, torch.Tensor], Report]]
    depths: Tuple[int, ...] = (50, 101, 152)
    figures: Tuple[str, ...] = ()
    unsupported: Tuple[str, ...] = ()
    networks: Tuple[str, ...] = ()
    lookalikes: Tuple[Tuple[str, str], ...] = ()
    refused_networks: Tuple[Tuple[str, str], ...] = ()
    exactness: Exactness = Exactness()
    layer_prefix: str = 'layer{}.'

    def infer_depth(self, src_state: Mapping[str, torch.Tensor],
                    layer_prefix: Optional[str] = None) -> int:
        """The depth whose blocks per stage the checkpoint has (counted from its keys)."""
        layer_prefix = layer_prefix or self.layer_prefix
        blocks = count_blocks(src_state, layer_prefix)
        if not any(blocks):
            tops = Counter(k.split('.', 1)[0] + '.' for k in src_state)
            raise ConversionError(
                f'{self.name}: no ResNet blocks under {layer_prefix.format(1)!r} ... '
                f'{layer_prefix.format(4)!r}: not a checkpoint in this format\'s layout (its '
                f'{len(src_state)} tensors are under '
                f'{short_list([f"{p} ({n})" for p, n in tops.most_common()], 6)})')
        # ResNet-34 and -50 have the same blocks per stage: a bottleneck has a third conv
        first = re.escape(layer_prefix.format(1)) + r'0\.'
        bottleneck = any(re.match(first + r'(.*\.)?conv3\.', k) for k in src_state)
        for depth in self.depths:
            if RESNET_ARCH[depth] == (bottleneck, blocks):
                return depth
        raise ConversionError(
            f'{self.name}: the checkpoint has {blocks} '
            f'{"bottleneck" if bottleneck else "basic"} blocks per stage, which matches none '
            f'of this format\'s depths '
            f'{ {d: RESNET_ARCH[d][1] for d in self.depths} }')


def short_list(keys: Sequence[str], limit: int = 12) -> str:
    keys = list(keys)
    shown = ', '.join(keys[:limit])
    return shown + (f', ... ({len(keys) - limit} more)' if len(keys) > limit else '')


# ---------------------------------------------------------------------------------------------
# transforms: source tensor -> our tensor


def linear_to_conv1x1(t: torch.Tensor) -> torch.Tensor:
    """``nn.Linear`` weight (C_out, C_in) -> 1x1 ``nn.Conv2d`` weight (C_out, C_in, 1, 1)."""
    if t.dim() != 2:
        raise ConversionError(f'linear_to_conv1x1: expected a 2-D Linear weight, got shape '
                              f'{tuple(t.shape)}')
    return t[:, :, None, None]


def conv1x1_to_linear(t: torch.Tensor) -> torch.Tensor:
    """1x1 ``nn.Conv2d`` weight (C_out, C_in, 1, 1) -> ``nn.Linear`` weight (C_out, C_in)."""
    if t.dim() != 4 or t.shape[2:] != (1, 1):
        raise ConversionError(f'conv1x1_to_linear: expected a (C_out, C_in, 1, 1) weight, got '
                              f'shape {tuple(t.shape)}')
    return t[:, :, 0, 0]


def reshape_to(*shape: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """A transform that reshapes (same number of elements), e.g. a Conv1d kernel."""

    def transform(t: torch.Tensor) -> torch.Tensor:
        if t.numel() != torch.Size(shape).numel():
            raise ConversionError(f'reshape_to{shape}: a tensor of shape {tuple(t.shape)} has '
                                  f'{t.numel()} elements')
        return t.reshape(shape)

    return transform


# ---------------------------------------------------------------------------------------------
# the mapper


class KeyMapper:
    """Moves source tensors to our keys, each source tensor exactly once.

    Missing source tensors are collected, not raised one by one, so :meth:`finish` names all
    of them (and every source tensor left over) in one error.
    """

    def __init__(self, src_state: Mapping[str, torch.Tensor], fmt: str):
        self.fmt = fmt
        self.src = dict(src_state)
        self.dst: Dict[str, torch.Tensor] = OrderedDict()
        self.used: Dict[str, str] = {}
        self.missing: List[Tuple[str, Optional[str]]] = []
        self.report = Report()

    def check_shape(self, src_key: str, expected: Sequence[Optional[int]],
                    why: str) -> Optional[torch.Tensor]:
        """Refuse a source tensor whose shape is not ``expected`` (``None``: any size there),
        with ``why`` (what the format's config has). A tensor that is absent passes: the
        mapper names every missing one together in :meth:`finish`. Returns the tensor."""
        t = self.src.get(src_key)
        if t is not None and (t.dim() != len(expected) or any(
                e is not None and n != e for n, e in zip(t.shape, expected))):
            raise ConversionError(f'{self.fmt}: {src_key!r} has shape {tuple(t.shape)}; {why}')
        return t

    def take(self, src_key: str, dst_key: str, kind: str,
             transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> None:
        """Map one tensor; ``kind`` groups it in the report (``'stem'``, ``'se'``, ...)."""
        if src_key not in self.src:
            self.missing.append((src_key, dst_key))
            return
        if src_key in self.used:
            raise ConversionError(f'{self.fmt}: source tensor {src_key!r} would be used twice '
                                  f'({self.used[src_key]!r} and {dst_key!r})')
        if dst_key in self.dst:
            raise ConversionError(f'{self.fmt}: two source tensors map to {dst_key!r}')
        tensor = self.src[src_key]
        if transform is not None:
            try:
                tensor = transform(tensor)
            except ConversionError as err:
                raise ConversionError(f'{self.fmt}: {src_key!r}: {err}') from None
        self.dst[dst_key] = tensor
        self.used[src_key] = dst_key
        self.report.counts[kind] += 1

    def take_module(self, src_prefix: str, dst_prefix: str, kind: str,
                    names: Iterable[str] = ('weight', ),
                    transforms: Optional[Mapping[str, Callable]] = None) -> None:
        """Map ``src_prefix.NAME`` to ``dst_prefix.NAME`` for each name (e.g. a conv's)."""
        transforms = transforms or {}
        for name in names:
            self.take(f'{src_prefix}.{name}', f'{dst_prefix}.{name}', kind,
                      transforms.get(name))

    def conv(self, src: str, dst: str, kind: str, bias: bool = False) -> None:
        self.take_module(src, dst, kind, ('weight', 'bias') if bias else ('weight', ))

    def bn(self, src: str, dst: str, kind: str) -> None:
        """A BatchNorm: its four tensors, and ``num_batches_tracked`` (written as 0 where the
        source, saved by a PyTorch older than 0.4.1, has none)."""
        self.take_module(src, dst, kind, BN_TENSORS)
        if f'{src}.num_batches_tracked' in self.src:
            self.take(f'{src}.num_batches_tracked', f'{dst}.num_batches_tracked', kind)
        else:
            self.fill(f'{dst}.num_batches_tracked', torch.tensor(0, dtype=torch.long),
                      'absent from the source (saved before PyTorch 0.4.1): 0')

    def fill(self, dst_key: str, tensor: torch.Tensor, why: str) -> None:
        if dst_key in self.dst:
            raise ConversionError(f'{self.fmt}: {dst_key!r} is filled twice')
        self.dst[dst_key] = tensor
        self.report.filled.append((dst_key, why))

    def drop(self, src_key: str, why: str) -> None:
        """Consume a source tensor that has no place in the backbone (classifier head)."""
        if src_key not in self.src:
            self.missing.append((src_key, None))
            return
        if src_key in self.used:
            raise ConversionError(f'{self.fmt}: source tensor {src_key!r} is dropped after '
                                  f'being mapped to {self.used[src_key]!r}')
        self.used[src_key] = None
        self.report.dropped.append((src_key, why))

    def drop_matching(self, pattern: str, why: str) -> None:
        """Drop every unused source tensor whose key matches ``pattern`` (``re.fullmatch``)."""
        for key in list(self.src):
            if key not in self.used and re.fullmatch(pattern, key):
                self.drop(key, why)

    def finish(self) -> Tuple[Dict[str, torch.Tensor], Report]:
        """The converted state dict; raises naming missing and left-over source tensors."""
        problems = []
        if self.missing:
            problems.append(f'{len(self.missing)} source tensors missing: ' + short_list(
                [s if s == d else f'{s} (to drop)' if d is None else f'{s} (for {d})'
                 for s, d in self.missing]))
        leftover = [k for k in self.src if k not in self.used]
        if leftover:
            problems.append(f'{len(leftover)} source tensors this format cannot map: '
                            + short_list(leftover))
        if problems:
            raise ConversionError(f'{self.fmt}: refusing the checkpoint: ' + '; '.join(problems))
        return self.dst, self.report


def check_against(dst_state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor],
                  fmt: str) -> None:
    """Refuse a converted state dict that is not exactly the backbone's: names the unfilled
    and unknown keys and the shape mismatches."""
    problems = []
    unfilled = [k for k in expected if k not in dst_state]
    if unfilled:
        problems.append(f'{len(unfilled)} backbone tensors left unfilled: '
                        + short_list(unfilled))
    extra = [k for k in dst_state if k not in expected]
    if extra:
        problems.append(f'{len(extra)} converted tensors the backbone does not have: '
                        + short_list(extra))
    shapes = [f'{k}: converted {tuple(v.shape)}, backbone {tuple(expected[k].shape)}'
              for k, v in dst_state.items()
              if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
    if shapes:
        problems.append(f'{len(shapes)} shape mismatches: ' + short_list(shapes, 6))
    if problems:
        raise ConversionError(f'{fmt}: the converted state dict does not fit the backbone: '
                              + '; '.join(problems))


def build_backbone(cfg: dict) -> torch.nn.Module:
    """Build one of our backbones from its config (registers mmattn's modules first)."""
    import mmattn.models  # noqa: F401  (registers the backbones and attention modules)
    from mmattn.registry import MODELS
    cfg = dict(cfg)
    cfg.pop('init_cfg', None)
    return MODELS.build(cfg)


def backbone_state(cfg: dict) -> Dict[str, torch.Tensor]:
    return build_backbone(cfg).state_dict()


# ---------------------------------------------------------------------------------------------
# checkpoint files


def load_source(path: str) -> Dict[str, torch.Tensor]:
    """A released checkpoint's state dict (:func:`files.read_source`: a ``torch.save`` file
    holding the state dict itself or nesting it under ``state_dict`` or ``model``, keys
    possibly prefixed by ``module.``, or a ``.safetensors`` file), read as tensors only: a
    checkpoint is never unpickled as code. A file that cannot be read is refused in one line
    naming it."""
    from .files import read_source
    return read_source(path).state


def save_converted(dst_state: Mapping[str, torch.Tensor], path: str, meta: dict) -> None:
    """Write ``{'state_dict': ..., 'meta': ...}``: what mmengine's ``load_checkpoint`` (and so
    ``init_cfg=dict(type='Pretrained', checkpoint=path)`` on the backbone) reads, with the
    backbone's own keys, so no ``prefix`` is needed. Written to a temporary file and renamed
    (:func:`files.write_atomically`): ``path`` is never left half-written."""
    from .files import write_atomically
    write_atomically({'state_dict': OrderedDict(dst_state), 'meta': dict(meta)}, path)


# ---------------------------------------------------------------------------------------------
# ResNet layouts


def count_blocks(src_state: Mapping[str, torch.Tensor],
                 layer_prefix: str = 'layer{}.') -> Tuple[int, ...]:
    """Blocks per stage (stages 1-4) of a ResNet-style state dict, from keys like
    ``layer3.5.conv1.weight`` (``layer_prefix`` formats the stage number)."""
    counts = []
    for stage in range(1, 5):
        prefix = layer_prefix.format(stage)
        idx = {int(m.group(1)) for k in src_state
               for m in [re.match(re.escape(prefix) + r'(\d+)\.', k)] if m}
        counts.append(max(idx) + 1 if idx else 0)
    return tuple(counts)


BlockHook = Callable[['KeyMapper', str, str, int, int], None]


def map_resnet(mapper: KeyMapper, depth: int, *, src_stem: str = '', deep_stem: bool = False,
               avg_down: bool = False, src_layer: str = 'layer{}.{}.',
               src_names: Optional[Mapping[str, str]] = None,
               src_downsample: Tuple[str, str] = ('downsample.0', 'downsample.1'),
               block_hook: Optional[BlockHook] = None) -> None:
    """Map a torchvision-style ResNet body onto mmdet's/mmseg's ``ResNet`` keys.

    Args:
        mapper: the conversion's mapper.
        depth: 18, 34, 50, 101 or 152 (blocks per stage as in :data:`RESNET_ARCH`).
        src_stem: prefix of the source stem's ``conv1``/``bn1`` (Cadene: ``'layer0.'``). With
            ``deep_stem``, a ``Sequential`` at ``{src_stem}conv1`` (timm's ``conv1.0/1/3/4/6``)
            plus ``{src_stem}bn1`` maps to mmdet's ``stem.0/1/3/4/6/7``.
        avg_down: the source downsample is (pool, conv, bn) and ours ``downsample.1/2``;
            ``src_downsample`` then names the source's conv and bn (timm: ``downsample.1/2``).
        src_layer: formats a block's source prefix from (stage 1-4, block index).
        src_names: source names of a block's convs and norms where they differ from ours
            (``conv1``-``conv3``, ``bn1``-``bn3``), e.g. ``{'bn1': 'norm1'}``.
        block_hook: called as ``hook(mapper, src_block_prefix, dst_block_prefix, stage,
            block)`` after each block, to map its attention module.
    """
    if depth not in RESNET_ARCH:
        raise ConversionError(f'{mapper.fmt}: depth {depth} is not one of '
                              f'{sorted(RESNET_ARCH)}')
    bottleneck, blocks = RESNET_ARCH[depth]
    names = {n: n for n in ('conv1', 'conv2', 'conv3', 'bn1', 'bn2', 'bn3')}
    names.update(src_names or {})
    if deep_stem:
        for k, (conv, norm) in enumerate(zip(DEEP_STEM_CONVS, DEEP_STEM_NORMS)):
            mapper.conv(f'{src_stem}conv1.{3 * k}', conv, 'stem')
            norm_src = f'{src_stem}conv1.{3 * k + 1}' if k < 2 else f'{src_stem}bn1'
            mapper.bn(norm_src, norm, 'stem')
    else:
        mapper.conv(f'{src_stem}conv1', 'conv1', 'stem')
        mapper.bn(f'{src_stem}bn1', 'bn1', 'stem')
    convs = (1, 2, 3) if bottleneck else (1, 2)
    dst_down = ('downsample.1', 'downsample.2') if avg_down else ('downsample.0',
                                                                  'downsample.1')
    for i, n in enumerate(blocks, start=1):
        for j in range(n):
            src, dst = src_layer.format(i, j), f'layer{i}.{j}.'
            for c in convs:
                mapper.conv(src + names[f'conv{c}'], f'{dst}conv{c}', 'resnet')
                mapper.bn(src + names[f'bn{c}'], f'{dst}bn{c}', 'resnet')
            # the first block of each stage changes width or stride, except ResNet-18/34's
            # first stage (64 -> 64, stride 1)
            if j == 0 and (bottleneck or i > 1):
                mapper.conv(src + src_downsample[0], dst + dst_down[0], 'downsample')
                mapper.bn(src + src_downsample[1], dst + dst_down[1], 'downsample')
            if block_hook is not None:
                block_hook(mapper, src, dst, i, j)


# ---------------------------------------------------------------------------------------------
# SE-ResNets and SE-ResNeXts (timm's and Cadene's)

SE_PLUGIN = dict(cfg=dict(type='mmattn.SE', reduction=16), position='after_conv3')


def convert_se_resnet(fmt: str, src_state: Mapping[str, torch.Tensor], depth: int,
                      se_name: str, head: str,
                      **layout) -> Tuple[Dict[str, torch.Tensor], Report]:
    """A ResNet body (``layout``: :func:`map_resnet`'s keyword arguments) whose blocks end
    with an SE module named ``se_name`` holding 1x1 convs ``fc1``, ``fc2`` with biases, which
    are ``mmattn.SE``'s (named ``se``); the classifier ``head`` (``.weight``, ``.bias``) is
    dropped."""
    mapper = KeyMapper(src_state, fmt)

    def se(m: KeyMapper, src: str, dst: str, stage: int, block: int) -> None:
        for fc in ('fc1', 'fc2'):
            m.conv(f'{src}{se_name}.{fc}', f'{dst}se.{fc}', 'se', bias=True)

    map_resnet(mapper, depth, block_hook=se, **layout)
    for name in ('weight', 'bias'):
        mapper.drop(f'{head}.{name}', 'ImageNet classifier head')
    return mapper.finish()
