"""Which implementation each fast path of mmattn runs, by device, dtype and size.

mmattn's fused autograd Functions, blocked loops and compiled kernels were written for, and
measured on, a 2-core CPU, where memory traffic dominates a light gate's cost. On a CUDA GPU
the same paths lose to plain autograd ops (an NVIDIA H200, torch 2.11 + CUDA 13.0, training
step at (8, 256, 56, 56): the fused gates 1.4-2.6x plain, issue #13): a Python loop of blocks
is one kernel launch per block there, and a GPU's caches make the traffic they save cheap.

So every such path asks :func:`select` which implementation to run, and the answer comes from
one rule per path, registered beside the path with the measurement that justifies it. A rule
answers with one of its ``choices``; the first is the default wherever nothing was measured
faster (for the gates: ``'plain'``, autograd's own ops).

Tests and benchmarks pin a path with :func:`forced` (``with forced('channel_gate', 'plain')``,
or the name ``'*'`` for every rule that has the choice), or for a whole process with the
environment variable ``MMATTN_PATHS``, e.g. ``MMATTN_PATHS=plain`` or
``MMATTN_PATHS=channel_gate=fused,attention=blocked``.

:func:`simulated` makes every rule answer as for another device: run on the meta device (shapes
without data) inside ``simulated('cuda')``, a module takes the paths it would take on a CUDA GPU,
so that what it runs there can be traced on a machine without one
(``tools/benchmarks/kernel_trace.py``).
"""
import contextlib
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import torch

__all__ = ['PathRule', 'forced', 'register_rule', 'rules', 'select', 'simulated']


@dataclass(frozen=True)
class PathRule:
    """How one fast path chooses its implementation.

    Args:
        name: the path's name (what :func:`select` and :func:`forced` take).
        choices: the implementations; the first is the default.
        choose: ``choose(x, **info) -> str``, one of ``choices``, from the path's main input
            (its device, dtype and size) and whatever sizes the caller passes.
        reason: the measurements behind the rule, shown by ``python -m mmattn paths``.
        example: a representative case for reports and tests: ``shape``, the input's shape
            (default: a (8, 256, 56, 56) feature map), and any further ``info`` the rule's
            ``choose`` takes.
    """
    name: str
    choices: Tuple[str, ...]
    choose: Callable[..., str]
    reason: str
    example: Dict[str, Any] = field(default_factory=dict)


_RULES: Dict[str, PathRule] = {}
_FORCED: Dict[str, str] = {}
_SIMULATED: Dict[str, torch.device] = {}


class _OnDevice:
    """``x`` as a rule sees it inside :func:`simulated`: every attribute is ``x``'s but the
    device."""
    __slots__ = ('_x', 'device')

    def __init__(self, x, device: torch.device):
        object.__setattr__(self, '_x', x)
        object.__setattr__(self, 'device', device)

    def __getattr__(self, name):
        return getattr(self._x, name)


def register_rule(name: str, choices: Tuple[str, ...], choose: Callable[..., str],
                  reason: str, example: Optional[Dict[str, Any]] = None) -> PathRule:
    """Register the rule of the path ``name`` (once; a module reloaded replaces it)."""
    if not choices:
        raise ValueError(f'path rule {name!r}: no choices given')
    rule = PathRule(name, tuple(choices), choose, ' '.join(reason.split()), dict(example or {}))
    _RULES[name] = rule
    return rule


def rules() -> Dict[str, PathRule]:
    """Every registered rule, by name."""
    return dict(sorted(_RULES.items()))


def _forced_choice(rule: PathRule) -> Optional[str]:
    choice = _FORCED.get(rule.name)
    if choice is not None:
        if choice not in rule.choices:  # only MMATTN_PATHS can name a choice unchecked
            raise ValueError(f'MMATTN_PATHS asks path {rule.name!r} for {choice!r}; its '
                             f'choices: {", ".join(rule.choices)}')
        return choice
    choice = _FORCED.get('*')  # every path that has this choice
    return choice if choice in rule.choices else None


def select(name: str, x: torch.Tensor, **info) -> str:
    """The implementation the path ``name`` runs for input ``x`` (and sizes in ``info``)."""
    try:
        rule = _RULES[name]
    except KeyError:
        raise KeyError(f'no path rule named {name!r}; rules: {", ".join(sorted(_RULES))}') \
            from None
    choice = _forced_choice(rule)
    if choice is None:
        device = _SIMULATED.get('device')
        choice = rule.choose(x if device is None else _OnDevice(x, device), **info)
        if choice not in rule.choices:
            raise RuntimeError(f'path rule {name!r} chose {choice!r}, not one of '
                               f'{rule.choices}')
    return choice


@contextlib.contextmanager
def forced(name: str, choice: str) -> Iterator[None]:
    """Run the path ``name`` (``'*'``: every path that has the choice) as ``choice`` inside
    the block, whatever its rule says."""
    if name != '*':
        rule = _RULES.get(name)
        if rule is None:
            raise KeyError(f'no path rule named {name!r}; rules: {", ".join(sorted(_RULES))}')
        if choice not in rule.choices:
            raise ValueError(f'path {name!r} has no choice {choice!r}; choices: '
                             f'{", ".join(rule.choices)}')
    before = _FORCED.get(name)
    _FORCED[name] = choice
    try:
        yield
    finally:
        if before is None:
            _FORCED.pop(name, None)
        else:
            _FORCED[name] = before


@contextlib.contextmanager
def simulated(device) -> Iterator[None]:
    """Inside the block every rule chooses as if its input were on ``device`` (e.g.
    ``'cuda'``), whatever device the tensors are on; forcing still wins."""
    before = _SIMULATED.get('device')
    _SIMULATED['device'] = torch.device(device)
    try:
        yield
    finally:
        if before is None:
            _SIMULATED.pop('device', None)
        else:
            _SIMULATED['device'] = before


def _parse_env(value: str) -> Dict[str, str]:
    """``MMATTN_PATHS``: ``choice`` (every path) or ``name=choice,name=choice``."""
    out = {}
    for item in filter(None, (s.strip() for s in value.split(','))):
        name, sep, choice = item.partition('=')
        if sep:
            out[name.strip()] = choice.strip()
        else:
            out['*'] = name
    return out


_FORCED.update(_parse_env(os.environ.get('MMATTN_PATHS', '')))
