"""The lean paths of the pixel-to-pixel modules stay lean: measured peak memory.

Each case runs in a fresh Python process that builds the module, warms it up on a tiny input
(kernels, thread pools), then runs one forward (and backward in training) on a large map and
reports the growth of its peak resident memory (``VmHWM``; not ``ru_maxrss``, which a child
inherits from the parent it was forked from, so a large pytest process would hide the growth).
At 128 x 128 pixels one HW x HW float32 matrix is 1 GiB, and an explicit forward and backward
holds several; the lean paths must stay far below one of them. A control case runs the explicit path at 64 x 64 and
must show its matrix, so the measurement itself is shown to see such allocations.

This catches silent fallbacks, e.g. PyTorch's fused attention taking its math kernel (which
builds the matrix) for unequal query/value widths or non-contiguous inputs.
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
MiB = 1 << 20

PROBE = r'''
def peak_rss_kib():
    with open('/proc/self/status') as f:
        return int(next(l for l in f if l.startswith('VmHWM:')).split()[1])


import json, resource, sys
import torch
from mmattn.models import build_attention
from tests.helpers import randomize_

name, kwargs, shape, train = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), \
    sys.argv[4] == 'train'
torch.manual_seed(0)
m = randomize_(build_attention(name, shape[1], **kwargs), scale=0.3).train(train)


def step(x):
    if train:
        x.requires_grad_()
        (m(x) * 1e-3).sum().backward()
    else:
        with torch.no_grad():
            m(x)


step(torch.randn(shape[0], shape[1], 8, 8))
x = torch.randn(*shape)
before = peak_rss_kib()
step(x)
after = peak_rss_kib()
print(json.dumps(dict(peak_bytes=(after - before) * 1024)))
'''


def peak_bytes(name, kwargs, shape, mode):
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (ROOT, env.get('PYTHONPATH')) if p)
    proc = subprocess.run(
        [sys.executable, '-c', PROBE, name, json.dumps(kwargs), json.dumps(shape), mode],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])['peak_bytes']


SHAPE = [1, 8, 128, 128]
MATRIX = (128 * 128)**2 * 4  # one HW x HW float32 matrix: 1 GiB

LEAN_CASES = [
    ('NonLocal', {}, 'train'),  # embedded Gaussian: blocked softmax attention
    ('NonLocal', {}, 'eval'),  # equal widths, no autograd: PyTorch's fused kernel
    ('NonLocal', dict(mode='gaussian'), 'train'),  # query/key width C, value width C/2
    ('NonLocal', dict(mode='dot_product'), 'train'),
    ('NonLocal', dict(mode='concatenation'), 'train'),
    ('NonLocal', dict(sub_sample=True), 'train'),
    ('DANetPAM', {}, 'train'),  # query/key width C/8, value width C
    ('DANetPAM', {}, 'eval'),
]


@pytest.mark.parametrize('name,kwargs,mode', LEAN_CASES,
                         ids=[f'{n}-{k.get("mode", k and "sub_sample" or "default")}-{m}'
                              for n, k, m in LEAN_CASES])
def test_lean_path_peak_memory(name, kwargs, mode):
    peak = peak_bytes(name, kwargs, SHAPE, mode)
    # blocks of 512 queries x 16384 keys: three 32 MiB blocks in the backward, plus O(HW);
    # an explicit forward and backward holds about three whole matrices (3 GiB)
    assert peak < MATRIX / 4, (
        f'{name}({kwargs}) {mode}: peak grew by {peak / MiB:.0f} MiB at 128x128; one HW x HW '
        f'matrix is {MATRIX / MiB:.0f} MiB')


def test_criss_cross_peak_memory_is_linear_in_cross_size():
    n, c, h, w = 1, 16, 128, 256
    cross = n * h * w * (h + w) * 4  # one float32 energy per pixel and cross member: 48 MiB
    peak = peak_bytes('CrissCross', {}, [n, c, h, w], 'train')
    assert peak < 8 * cross, f'CrissCross: peak grew by {peak / MiB:.0f} MiB'
    assert peak < (h * w)**2 * 4 / 8  # an HW x HW matrix would be 4 GiB


def test_measurement_sees_the_explicit_matrix():
    # the control: the explicit path at 64x64 holds its 64 MiB matrix (and its softmax)
    matrix = (64 * 64)**2 * 4
    peak = peak_bytes('NonLocal', dict(lean=False), [1, 8, 64, 64], 'train')
    assert peak > matrix, f'explicit path: peak grew by only {peak / MiB:.0f} MiB'
