"""What every attention module of mmattn looks at, read from a forward pass through hooks.

Each attention class says what its maps are (see :class:`mmattn.models.BaseAttention`), so a
new module needs no edit here:

- ``channel_gates`` / ``spatial_gates``: map name -> path of a submodule whose output is a gate
  (its output is recorded by a forward hook while the module runs);
- an ``attention_maps(inputs, taps, query)`` method, for maps that are computed from the
  module's input, its parameters and the outputs of the submodules named in ``map_taps``;
- ``no_maps``: why the module has nothing to draw.

The modules themselves are not changed. :func:`uncovered_classes` lists the registered classes
that declare none of these (a test keeps it empty); the tool reports such a module, with what
to add, instead of skipping it.

Three kinds of maps come out (:class:`AttentionMaps`):

- ``spatial``: a value per position of the module's feature map: a spatial gate (CBAM, BAM,
  sSE, SGE, triplet, coordinate attention, SimAM, ...; a gate on channels *and* positions is
  averaged over the channels), GC's softmax context weights, SIAU's part maps;
- ``query``: the attention of one query pixel over positions (Non-local, DANet's PAM,
  criss-cross, A^2, APNB/AFNB, OCR). Only that pixel's row is computed, from the module's own
  queries and keys, never the HW x HW matrix;
- ``channel``: a weight per channel (SE, ECA, GE, SRM, FcaNet, GSoP, SPA, cSE, CBAM's channel
  gate, SK's branch weights, ...).

Where a query map summarises more than one softmax row, it says so: criss-cross's "passes
combined" map multiplies the passes' attention matrices (which pixels' values reach the query
in R passes; the residual path and gamma are left out), APNB/AFNB spread each anchor's weight
evenly over the positions its pyramid bin averages (exact: the pooling is linear), and OCR
spreads each object region's weight by that region's soft mask (a summary: the region features
pass through a nonlinear projection before the attention).

Values are at the module's own resolution and for the first image of the batch; the tool
(``tools/visualize_attention.py``) resizes them to the image.
"""
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple, Type, Union

import torch
from torch import nn

from mmattn.models.base import BaseAttention
from mmattn.models.factory import attention_classes, draws_maps, missing_declarations

__all__ = [
    'AttentionMaps', 'Tap', 'QueryPoint', 'AttentionRecorder', 'Record',
    'find_attention_modules', 'uncovered_classes', 'extract_maps', 'maps_caption', 'taps_of',
    'first_image', 'spread_over_pooling'
]


@dataclass
class AttentionMaps:
    """The maps of one call of one module: name -> tensor (first image of the batch).

    ``spatial`` and ``query`` maps are (h, w) on the module's feature map (or, for AFNB, on the
    map its keys come from); ``channel`` maps are (C,).
    """

    spatial: Dict[str, torch.Tensor] = field(default_factory=dict)
    query: Dict[str, torch.Tensor] = field(default_factory=dict)
    channel: Dict[str, torch.Tensor] = field(default_factory=dict)

    def __bool__(self):
        return bool(self.spatial or self.query or self.channel)


@dataclass
class Tap:
    """What a forward hook on a submodule recorded during one call: its inputs and output."""

    inputs: tuple
    output: torch.Tensor


class QueryPoint:
    """The query pixel, as a fraction of the network input's height and width.

    ``index(h, w)`` is the cell of an h x w feature map (covering the whole network input)
    that holds the pixel.
    """

    def __init__(self, rel_y: float = 0.5, rel_x: float = 0.5):
        self.rel_y, self.rel_x = float(rel_y), float(rel_x)

    def index(self, h: int, w: int) -> Tuple[int, int]:
        return (min(h - 1, max(0, int(self.rel_y * h))), min(w - 1, max(0, int(self.rel_x * w))))

    def __repr__(self):
        return f'QueryPoint(rel_y={self.rel_y:.4f}, rel_x={self.rel_x:.4f})'


# -- what a class declares ----------------------------------------------------------------------
def taps_of(cls: Type[BaseAttention]) -> Tuple[str, ...]:
    """Paths of the submodules whose calls are recorded: the gates' and ``map_taps``."""
    paths = list(cls.channel_gates.values()) + list(cls.spatial_gates.values())
    return tuple(dict.fromkeys(paths + list(cls.map_taps)))


def maps_caption(cls: Type[BaseAttention]) -> str:
    """One line for the tool's index: what the pictures of ``cls`` show."""
    if cls.maps_caption:
        return cls.maps_caption
    gates = [f'{name} (the output of {path})' for kind in (cls.spatial_gates, cls.channel_gates)
             for name, path in kind.items()]
    return '; '.join(gates)


def uncovered_classes() -> List[str]:
    """Registered attention classes that declare no maps and no reason for having none."""
    return [name for name, cls in attention_classes().items()
            if not draws_maps(cls) and not cls.no_maps]


# -- helpers for the classes' attention_maps methods -------------------------------------------
def first_image(t: torch.Tensor) -> torch.Tensor:
    """First image of the batch on the CPU; float64 stays float64 (tests compare in it),
    half precision becomes float32."""
    t = t[0].detach().cpu()
    return t if t.dtype == torch.float64 else t.float()


def spread_over_pooling(weights: torch.Tensor, pool: Callable[[torch.Tensor], torch.Tensor],
                        h: int, w: int) -> torch.Tensor:
    """(h, w) weights of the positions of a map whose pooled cells got ``weights``.

    ``pool`` is a linear pooling of a (1, 1, h, w) map into (1, 1, K) cells (ANN's pyramid
    pooling), so the context ``sum_a w_a mean_{j in cell a} v_j`` equals ``sum_j eff_j v_j``
    with ``eff`` the adjoint of the pooling applied to ``w``: computed here as the gradient of
    ``w . pool(z)`` with respect to z, through the module's own pooling function.
    """
    with torch.enable_grad():
        z = torch.zeros(1, 1, h, w, dtype=weights.dtype, requires_grad=True)
        pooled = pool(z)[0, 0]
        (eff, ) = torch.autograd.grad((pooled * weights.detach()).sum(), z)
    return eff[0, 0]


def _gate_maps(module: BaseAttention, taps: Dict[str, List[Tap]]) -> Union[AttentionMaps, str]:
    """The maps of the gates a class declares: each named submodule's last output."""
    maps = AttentionMaps()
    for kind, gates in (('spatial', module.spatial_gates), ('channel', module.channel_gates)):
        for name, path in gates.items():
            calls = taps.get(path)
            if not calls:
                return f'its gate {path!r} did not run as a module'
            gate = first_image(calls[-1].output)
            if kind == 'channel':
                maps.channel[name] = gate.flatten()  # (C, 1, 1)
            else:
                maps.spatial[name] = gate.mean(0)  # (1, H, W) or (C, H, W)
    return maps


def extract_maps(module: BaseAttention, inputs: tuple, taps: Dict[str, List[Tap]],
                 query: QueryPoint) -> Union[AttentionMaps, str]:
    """The maps of one call of ``module``, or a sentence saying why there are none."""
    cls = type(module)
    if cls.no_maps:
        return cls.no_maps
    if not draws_maps(cls):
        return ' '.join(gap for gap in missing_declarations(cls) if 'attention maps' in gap) \
            + ' (see mmattn.models.BaseAttention)'
    with torch.no_grad():
        maps = module.attention_maps(inputs, taps, query)
        if maps is None:
            maps = _gate_maps(module, taps)
    if isinstance(maps, AttentionMaps):
        for kind in (maps.spatial, maps.query, maps.channel):
            for name, t in kind.items():
                kind[name] = t.detach().cpu()
    return maps


# -- running a model ------------------------------------------------------------------------------
def find_attention_modules(model: nn.Module) -> List[Tuple[str, BaseAttention]]:
    """The outermost mmattn attention modules of ``model`` (SCSE, not the cSE/sSE inside it),
    in module order."""
    found = []
    for name, module in model.named_modules():
        if not isinstance(module, BaseAttention):
            continue
        if any(outer == '' or name.startswith(outer + '.') for outer, _ in found):
            continue
        found.append((name, module))
    return found


@dataclass
class Record:
    """One call of one attention module: its name in the model, class, and maps (or why not)."""

    name: str
    cls: Type[BaseAttention]
    call: int
    maps: Optional[AttentionMaps]
    reason: Optional[str] = None


class AttentionRecorder:
    """Forward hooks on every attention module of a model (and on the submodules their
    classes tap); each call of a module is turned into a :class:`Record` at once, while its
    inputs are still what it saw.

    Use as a context manager around the forward pass; the hooks are removed on exit. Set
    :attr:`query` before the attention modules run (the tool does it from a hook on the data
    preprocessor, once the network input's size is known).
    """

    def __init__(self, model: nn.Module, query: Optional[QueryPoint] = None):
        self.modules = find_attention_modules(model)
        self.query = query or QueryPoint()
        self.records: List[Record] = []
        self._handles = []
        self._taps: Dict[str, Dict[str, List[Tap]]] = {}
        self._calls: Dict[str, int] = {}
        self._extracting = False

    def __enter__(self):
        for name, module in self.modules:
            self._taps[name] = {}
            for path in taps_of(type(module)):
                try:
                    sub = module.get_submodule(path)
                except AttributeError:
                    continue  # an optional branch this instance does not have
                if sub is None:
                    continue
                self._handles.append(sub.register_forward_hook(self._tap_hook(name, path)))
            self._handles.append(module.register_forward_hook(self._module_hook(name)))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _tap_hook(self, name, path):
        def hook(sub, inputs, output):
            if not self._extracting:
                self._taps[name].setdefault(path, []).append(Tap(inputs, output))
        return hook

    def _module_hook(self, name):
        def hook(module, inputs, output):
            if self._extracting:
                return
            call = self._calls.get(name, 0)
            self._calls[name] = call + 1
            taps, self._taps[name] = self._taps[name], {}
            self._extracting = True  # attention_maps may run submodules: record nothing then
            try:
                result = extract_maps(module, inputs, taps, self.query)
            finally:
                self._extracting = False
            if isinstance(result, str):
                self.records.append(Record(name, type(module), call, None, result))
            elif not result:
                self.records.append(Record(name, type(module), call, None,
                                           'its attention_maps returned no map'))
            else:
                self.records.append(Record(name, type(module), call, result))
        return hook

    def not_run(self) -> List[Tuple[str, BaseAttention]]:
        """Attention modules that did not run during the recorded passes."""
        return [(n, m) for n, m in self.modules if n not in self._calls]
