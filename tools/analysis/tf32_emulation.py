"""Ours against plain PyTorch in float32 as a CUDA GPU computes it by default, emulated on the CPU.

On Ampere and later GPUs PyTorch lets cuDNN run float32 convolutions on TF32 tensor cores
(``torch.backends.cudnn.allow_tf32`` is True by default: inputs and weights rounded to 10
mantissa bits, sums in float32), while cuBLAS matrix products stay float32
(``torch.backends.cuda.matmul.allow_tf32`` is False by default). Where mmattn computes with a
matrix product what the plain formula computes with a convolution (RGA's relation convs), the
two differ on a GPU by TF32's rounding, not by float32's. This script rounds every
``F.conv2d``'s operands to TF32 and prints, per module, the largest difference of the outputs
(relative to the largest entry, as ``tools/benchmarks/module_speed.py`` prints it) between ours
and plain, and of each against the plain formula in float64::

    PYTHONPATH=. python tools/analysis/tf32_emulation.py RGA NonLocal --shape 2 256 56 56
"""
import argparse
import copy
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'benchmarks'))


_CONV2D = F.conv2d


def conv2d_restored():
    """The ``F.conv2d`` this module found (what it puts back after each run)."""
    return _CONV2D


def tf32(t):
    """float32 ``t`` rounded to TF32's 10 mantissa bits (to nearest, ties away from zero)."""
    if t is None or t.dtype != torch.float32:
        return t
    return ((t.view(torch.int32) + 0x1000) & ~0x1FFF).view(torch.float32)


def run(name, shape, seed=0):
    """(ours vs plain, ours vs float64, plain vs float64) for exact and TF32 convolutions."""
    from module_speed import randomize, rel_diff
    from plain_modules import build_plain

    from mmattn.models.factory import build_attention
    torch.manual_seed(seed)
    ours = randomize(build_attention(name, shape[1]), seed=seed).train()
    plain = build_plain(name, ours)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed + 1))
    conv2d = _CONV2D
    rows = {}
    with torch.no_grad():
        ref = build_plain(name, copy.deepcopy(ours).double())(x.double())
        for mode in ('float32', 'TF32 convolutions'):
            if mode != 'float32':
                F.conv2d = lambda i, w, *a, **k: conv2d(tf32(i), tf32(w), *a, **k)
            try:
                o, p = ours(x), plain(x)
            finally:
                F.conv2d = conv2d
            rows[mode] = (rel_diff(o, p), rel_diff(o, ref), rel_diff(p, ref))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('modules', nargs='+', help='registered names, e.g. RGA NonLocal')
    parser.add_argument('--shape', type=int, nargs=4, default=(2, 256, 56, 56))
    args = parser.parse_args(argv)
    print(f'torch {torch.__version__}, CPU emulation, input {tuple(args.shape)}, '
          'modules in training mode')
    print('| module | convolutions | ours vs plain | ours vs float64 | plain vs float64 |')
    print('|---|---|---|---|---|')
    for name in args.modules:
        for mode, (op, o64, p64) in run(name, args.shape).items():
            print(f'| {name} | {mode} | {op:.2e} | {o64:.2e} | {p64:.2e} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
