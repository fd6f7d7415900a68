"""The one switch for mmattn's CPU fast paths.

A few modules have a second implementation of their formula that trains markedly faster on a
CPU (fused kernels, hand-written backward passes, regrouped products; they all live in
:mod:`mmattn.models.layers.cpu_kernels`). A module's ``forward`` takes it only where
:func:`use_fast_path` is true for its input, and otherwise runs the formula in plain PyTorch::

    def forward(self, x):
        if use_fast_path(x):
            return cpu_kernels.simam(x, self.e_lambda)
        ...  # the authors' formula

:func:`use_fast_path` is true for a CPU tensor while the switch is on (the default), and false
while a graph is captured (tracing, scripting, ONNX export, ``torch.compile``), which must see
the plain operators. The switch is turned off for a process by the environment variable
``MMATTN_FAST_PATHS=0``, for a block by ``with fast_paths(False):``, or by
:func:`set_fast_paths`. Results are the same either way, up to float rounding.
"""
import contextlib
import os
from typing import Iterator

import torch

__all__ = ['capturing_graph', 'fast_paths', 'fast_paths_enabled', 'set_fast_paths',
           'use_fast_path']

ENV_VAR = 'MMATTN_FAST_PATHS'
_ON = ('1', 'true', 'on', 'yes')
_OFF = ('0', 'false', 'off', 'no')


def _from_env() -> bool:
    value = os.environ.get(ENV_VAR, '1').strip().lower()
    if value not in _ON + _OFF:
        raise ValueError(f'{ENV_VAR}={value!r}: expected one of {", ".join(_ON + _OFF)}')
    return value in _ON


_enabled = _from_env()


def fast_paths_enabled() -> bool:
    """Whether the switch is on."""
    return _enabled


def set_fast_paths(enabled: bool) -> None:
    """Turn the CPU fast paths on or off for the whole process."""
    global _enabled
    _enabled = bool(enabled)


@contextlib.contextmanager
def fast_paths(enabled: bool) -> Iterator[None]:
    """Turn the CPU fast paths on or off inside the block."""
    global _enabled
    before = _enabled
    _enabled = bool(enabled)
    try:
        yield
    finally:
        _enabled = before


def capturing_graph() -> bool:
    """Whether a graph is being captured: tracing, scripting, ONNX export or
    ``torch.compile``."""
    return (torch.jit.is_tracing() or torch.jit.is_scripting()
            or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling())


def use_fast_path(x: torch.Tensor) -> bool:
    """Whether a module runs its CPU fast path for the input ``x``."""
    return _enabled and x.device.type == 'cpu' and not capturing_graph()
