"""Shared test helpers: random weights, float64 comparisons, optional-dependency guards, and
the scripts under tools/ as modules."""
import importlib.util
import os.path as osp
import sys

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm


def has_module(name):
    return importlib.util.find_spec(name) is not None


requires_mmdet = pytest.mark.skipif(not has_module('mmdet'), reason='needs mmdet')
requires_mmseg = pytest.mark.skipif(not has_module('mmseg'), reason='needs mmseg')

TOOLS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools')


def load_tool(*path, name=None):
    """A script under tools/ (no package) as a module, e.g. ``load_tool('benchmarks',
    'module_speed.py')``. It is registered in ``sys.modules`` under ``name`` (default: the
    file's stem), where pickling and worker processes look up what it defines; a file already
    loaded under that name is returned as it is."""
    file = osp.join(TOOLS, *path)
    name = name or osp.splitext(osp.basename(file))[0]
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, '__file__', None) == file:
        return loaded
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@torch.no_grad()
def randomize_(module, seed=0, scale=0.5):
    """Give every parameter and every norm's running statistics random values.

    Zero-initialised gammas and last layers would otherwise hide the attention path from a
    test. Fixed buffers that are part of a module's definition (e.g. FcaNet's DCT basis) are
    left alone: only parameters and batch-norm statistics change.

    Weights of two or more dimensions are drawn with a standard deviation of ``scale`` over
    the square root of their fan-in, so activations keep their size through wide layers (a
    fixed deviation makes 512-wide softmax attention an argmax and hides its arithmetic).
    """
    gen = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        std = scale / p[0].numel() ** 0.5 if p.dim() >= 2 else scale
        p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype) * std)
    for m in module.modules():
        if isinstance(m, _BatchNorm) and m.track_running_stats:
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return module


def assert_close(actual, expected, rtol=1e-7, atol=1e-9, msg=''):
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, msg=msg or None)
