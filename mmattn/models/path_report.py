"""``python -m mmattn paths``: every path rule of :mod:`mmattn.models.dispatch`, what it picks
on the CPU and on a CUDA GPU for float32 and bfloat16, and the measurements behind it.

Rules are asked with :class:`TensorProbe`, a stand-in for an input tensor on any device (a
CUDA device need not exist here): it carries the device, dtype and shape a rule reads, and no
data. The shape is the benchmark's, (8, 256, 56, 56), where size thresholds matter (SimAM).
"""
import math
import textwrap
from typing import List, Sequence

import torch

from . import dispatch

SHAPE = (8, 256, 56, 56)
DEVICES = ('cpu', 'cuda')
DTYPES = (torch.float32, torch.bfloat16)
_SHORT = {torch.float32: 'fp32', torch.bfloat16: 'bf16', torch.float16: 'fp16',
          torch.float64: 'fp64'}


class TensorProbe:
    """What a rule's ``choose`` may read of its input, for any device and dtype, without
    memory: ``device``, ``dtype``, ``shape``, ``numel()``, ``dim()``, ``is_floating_point()``."""

    def __init__(self, device='cpu', dtype=torch.float32, shape: Sequence[int] = SHAPE):
        self.device = torch.device(device)
        self.dtype = dtype
        self.shape = torch.Size(shape)

    def numel(self) -> int:
        return math.prod(self.shape)

    def dim(self) -> int:
        return len(self.shape)

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    def __repr__(self):
        return f'TensorProbe({self.device.type}, {self.dtype}, {tuple(self.shape)})'


def example_of(name: str):
    """(shape, info) of the rule's representative case (:attr:`PathRule.example`)."""
    info = dict(dispatch.rules()[name].example)
    return tuple(info.pop('shape', SHAPE)), info


def picks(name: str, devices=DEVICES, dtypes=DTYPES) -> dict:
    """{(device, dtype): choice} of the rule ``name`` for its representative case (forcing by
    ``MMATTN_PATHS`` included)."""
    shape, info = example_of(name)
    return {(d, t): dispatch.select(name, TensorProbe(d, t, shape), **info)
            for d in devices for t in dtypes}


def render(width: int = 100) -> str:
    """The rules as text, no line longer than ``width``."""
    import mmattn.models  # noqa: F401  (every module registers its rules on import)
    wrap = textwrap.TextWrapper(width=width, initial_indent='    ', subsequent_indent='    ',
                                break_long_words=True, break_on_hyphens=False)
    lines: List[str] = [
        textwrap.fill(
            'Where each fast path runs (mmattn.models.dispatch). Picks for an input of shape '
            f'{SHAPE} unless a rule names its own case; MMATTN_PATHS or dispatch.forced() '
            'override them.', width)
    ]
    for name, rule in dispatch.rules().items():
        got = picks(name)
        lines.append('')
        lines.extend(textwrap.wrap(f'{name}  (choices: {", ".join(rule.choices)})', width))
        if rule.example:
            lines.extend(wrap.wrap('case: ' + ', '.join(f'{k}={v}' for k, v in
                                                        rule.example.items())))
        where = ' | '.join(
            f'{d}: ' + ', '.join(f'{_SHORT.get(t, str(t))} {got[d, t]}' for t in DTYPES)
            for d in DEVICES)
        lines.extend(wrap.wrap(where))
        lines.extend(wrap.wrap(rule.reason))
    lines.append('')
    lines.append(f'{len(dispatch.rules())} rules')
    return '\n'.join(lines)
