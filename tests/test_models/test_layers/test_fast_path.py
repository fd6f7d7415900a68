"""The fast-path switch: on for CPU tensors by default, off by ``MMATTN_FAST_PATHS=0``,
``fast_paths(False)`` and ``set_fast_paths(False)``, and off while a graph is captured
(tracing, ONNX export, ``torch.compile``)."""
import io
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from mmattn.models.layers import (capturing_graph, fast_path, fast_paths, fast_paths_enabled,
                                  set_fast_paths, use_fast_path)
from tests.helpers import has_module

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


@pytest.fixture(autouse=True)
def restore_switch():
    before = fast_paths_enabled()
    yield
    set_fast_paths(before)


def test_on_for_cpu_tensors_by_default():
    set_fast_paths(True)
    assert use_fast_path(torch.zeros(2))
    # any other device runs the plain formula
    assert not use_fast_path(torch.zeros(2, device='meta'))
    assert not capturing_graph()


def _in_a_process(value):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join(p for p in (ROOT, env.get('PYTHONPATH')) if p)
    if value is None:
        env.pop('MMATTN_FAST_PATHS', None)
    else:
        env['MMATTN_FAST_PATHS'] = value
    code = ('import torch; from mmattn.models.layers import use_fast_path; '
            'print(use_fast_path(torch.zeros(1)))')
    return subprocess.run([sys.executable, '-c', code], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize('value,expected', [(None, 'True'), ('0', 'False'), ('off', 'False'),
                                            ('1', 'True'), (' Yes ', 'True')])
def test_environment_variable(value, expected):
    out = _in_a_process(value)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [expected]


def test_environment_variable_bad_value():
    out = _in_a_process('fast')
    assert out.returncode != 0
    assert "MMATTN_FAST_PATHS='fast': expected one of 1, true, on, yes, 0, false, off, no" \
        in out.stderr


def test_environment_is_read_by_the_switch(monkeypatch):
    monkeypatch.setenv('MMATTN_FAST_PATHS', 'no')
    assert fast_path._from_env() is False
    monkeypatch.setenv('MMATTN_FAST_PATHS', 'maybe')
    with pytest.raises(ValueError, match='MMATTN_FAST_PATHS'):
        fast_path._from_env()


def test_context_manager_nests_and_restores():
    set_fast_paths(True)
    x = torch.zeros(1)
    with fast_paths(False):
        assert not use_fast_path(x) and not fast_paths_enabled()
        with fast_paths(True):
            assert use_fast_path(x)
            with fast_paths(False):
                assert not use_fast_path(x)
            assert use_fast_path(x)
        assert not use_fast_path(x)
    assert use_fast_path(x)
    with pytest.raises(RuntimeError, match='inside'):
        with fast_paths(False):
            raise RuntimeError('inside')
    assert use_fast_path(x)  # restored after an exception too


def test_set_fast_paths():
    x = torch.zeros(1)
    set_fast_paths(False)
    assert not use_fast_path(x) and not fast_paths_enabled()
    with fast_paths(True):
        assert use_fast_path(x)
    assert not use_fast_path(x)
    set_fast_paths(True)
    assert use_fast_path(x)


class _Probe(nn.Module):
    """Records what the switch says inside its forward."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append((use_fast_path(x), capturing_graph()))
        return x * 2


def test_tracing_takes_the_plain_path():
    set_fast_paths(True)
    probe = _Probe()
    torch.jit.trace(probe, torch.zeros(2, 3), check_trace=False)
    assert probe.seen == [(False, True)]
    probe(torch.zeros(2, 3))
    assert probe.seen[-1] == (True, False)


def test_torch_compile_takes_the_plain_path():
    set_fast_paths(True)

    def fn(x):
        return x + float(use_fast_path(x))

    compiled = torch.compile(fn, backend='eager', fullgraph=True)
    x = torch.zeros(3)
    assert torch.equal(compiled(x), x)
    assert torch.equal(fn(x), x + 1)


@pytest.mark.skipif(not has_module('onnx'), reason='needs onnx')
def test_onnx_export_takes_the_plain_path():
    set_fast_paths(True)
    probe = _Probe()
    torch.onnx.export(probe, (torch.zeros(2, 3), ), io.BytesIO(), opset_version=17,
                      dynamo=False)
    assert probe.seen and all(s == (False, True) for s in probe.seen)
