"""What each attention module runs in a training step on a CUDA GPU, against its plain twin,
traced on a machine without one.

Every module runs forward + backward at the benchmark's shape on the **meta device** (shapes,
strides and dtypes, no data) inside :func:`mmattn.models.dispatch.simulated` ``('cuda')``, so
that every path rule answers as on a CUDA GPU (the code's own ``device.type == 'cpu'`` tests
see ``'meta'`` and take their non-CPU branch too). A ``TorchDispatchMode`` records every ATen
op that launches work, with its signature (op, and the shape, stride and dtype of each tensor
argument), the bytes its tensors cover and its FLOPs (torch's ``flop_counter`` registry). The
same is recorded for the module's twin in ``plain_modules.py`` with the same weights.

Where the two records hold the same kernels (same signatures, counted as multisets: the
backward's order may differ), the module launches on the GPU the kernels plain PyTorch
launches, with the same memory layouts, bytes and FLOPs: its time can then differ from plain's
(issue #13: "at most 1.0x plain") only by what this does not see, below, and by noise. Where
they differ, the table names
the kernels ours runs and plain does not (and the reverse); those modules' GPU times can only
be read from a GPU (``module_speed.py --device cuda``).

What this does not see: kernel choice inside an op (cuDNN algorithms, TF32), launch gaps
between ops and the host's overhead. Float16/bfloat16 autocast cannot run on the meta device:
``--amp bf16`` traces on CPU tensors (at a smaller default shape) under the CPU's autocast,
whose policy differs from CUDA's in detail, so that only the difference between ours and plain
means much there. Bytes count each tensor argument and result once per op (an expanded tensor
by its distinct elements): a measure of traffic for comparing two records, not a prediction of
time.

    python tools/benchmarks/kernel_trace.py [--modules SE CBAM] [--shape 8 256 56 56]
    python tools/benchmarks/kernel_trace.py --show RGA      # both kernel lists of one module
    python tools/benchmarks/kernel_trace.py --heads         # mmseg's decode heads against ours
    python tools/benchmarks/kernel_trace.py --amp bf16      # under autocast, on the CPU
"""
import argparse
import collections
import math
import os
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
from bench_utils import AMP  # noqa: E402

SHAPE = (8, 256, 56, 56)
AMP_SHAPE = (2, 64, 28, 28)  # --amp runs on the CPU, with data
# ops that launch nothing: allocations, and views that ATen does not mark as views
_NO_KERNEL = {'empty', 'empty_like', 'empty_strided', 'new_empty', 'new_empty_strided',
              '_unsafe_view', '_reshape_alias'}


@dataclass(frozen=True)
class Kernel:
    """One ATen op that launches work: ``signature`` identifies it (op, and shape, stride and
    dtype of each tensor argument, other arguments as written), ``bytes`` the distinct bytes
    of its tensors, ``largest`` those of its largest tensor, ``flops`` torch's count for
    matrix products and convolutions (else 0)."""
    signature: str
    bytes: int
    flops: int
    largest: int = 0

    @property
    def op(self) -> str:
        return self.signature.split('(', 1)[0]


def _distinct_bytes(t) -> int:
    """Bytes of the distinct elements of ``t`` (a broadcast dimension, stride 0, counts once)."""
    n = math.prod(s for s, st in zip(t.shape, t.stride()) if st != 0) if t.dim() else 1
    return n * t.element_size()


def _layout(t) -> list:
    """``t``'s (size, stride) pairs with what does not change the work removed (see
    :func:`_merged`)."""
    return _merged(zip(t.shape, t.stride()))


def _merged(pairs) -> list:
    """(size, stride) pairs with size-1 dimensions dropped and neighbours that are contiguous
    with each other merged, so that (8, 16, 1, 1), (8, 16) and (128,) of one contiguous buffer
    read alike, while a transposed or broadcast operand keeps its strides."""
    dims = [(s, st) for s, st in pairs if s != 1]
    merged = []
    for size, stride in reversed(dims):
        if merged and stride == merged[-1][0] * merged[-1][1]:
            inner = merged.pop()
            merged.append((size * inner[0], inner[1]))
        else:
            merged.append((size, stride))
    return merged[::-1]


def _describe(a) -> str:
    import torch
    if isinstance(a, torch.Tensor):
        dtype = str(a.dtype).replace('torch.', '')
        return dtype + ''.join(f'[{s}/{st}]' for s, st in _layout(a))
    if isinstance(a, (list, tuple)):
        return '[' + ', '.join(_describe(x) for x in a) + ']'
    return repr(a)


def _signature(func, args, kwargs) -> str:
    """``op(arguments)``, with what does not change the work written one way: an in-place op
    as its out-of-place form (the same kernel, writing into its input); tensors by
    :func:`_layout`; a ``dim`` argument by the sizes and strides it spans, and no
    ``keepdim`` (``mean(x, (2, 3), keepdim=True)`` on (8, 256, 56, 56) is ``mean(x, -1)`` on
    (8, 256, 3136))."""
    import torch
    op = func.name().replace('aten::', '')
    base, dot, overload = op.partition('.')
    if base.endswith('_') and not base.startswith('__'):
        op = base[:-1] + dot + overload
    values = dict(zip((a.name for a in func._schema.arguments), args))
    values.update(kwargs)
    values.pop('keepdim', None)
    tensor = next((v for v in values.values() if isinstance(v, torch.Tensor)), None)
    dim = values.get('dim')
    if tensor is not None and tensor.dim() and isinstance(dim, (int, list, tuple)):
        dims = [dim] if isinstance(dim, int) else list(dim)
        span = _merged((tensor.shape[d], tensor.stride(d))
                       for d in sorted(d % tensor.dim() for d in dims))
        values['dim'] = ''.join(f'[{s}/{st}]' for s, st in span)
    return f'{op}(' + ', '.join(f'{k}={_describe(v)}' for k, v in values.items()) + ')'


def _recorder():
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten
    from torch.utils.flop_counter import flop_registry

    class Recorder(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.kernels: List[Kernel] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            name = func.overloadpacket.__name__
            outs = [a for a in tree_flatten(out)[0] if isinstance(a, torch.Tensor)]
            if func.is_view or name in _NO_KERNEL or not outs:  # not outs: promote_types
                return out
            ins = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)]
            flops = 0
            if func.overloadpacket in flop_registry:
                flops = int(flop_registry[func.overloadpacket](*args, **kwargs, out_val=out))
            sizes = [_distinct_bytes(t) for t in ins + outs]
            # the results' layouts too: with contiguous operands merged, (8, 64, 128) @
            # (8, 128, 64) and (8, 128, 64) @ (8, 64, 128) differ only there
            signature = _signature(func, args, kwargs) + ' -> ' + _describe(outs)
            self.kernels.append(Kernel(signature, sum(sizes), flops, max(sizes, default=0)))
            return out

    return Recorder()


def trace_step(step, inputs: Sequence = ()) -> List[Kernel]:
    """The kernels of a training step, ``step(*inputs)`` and its backward, in steady state: a
    first call without autograd builds what a module caches (CrissCross's self mask) and gives
    the output's shape for the gradient."""
    import torch
    with torch.no_grad():
        out = step(*inputs)
    grad_output = torch.zeros(out.shape, dtype=out.dtype, device=out.device)
    recorder = _recorder()
    with recorder:
        step(*inputs).backward(grad_output)
    return recorder.kernels


def trace_module(name: str, impl: str = 'mmattn', shape: Tuple[int, ...] = SHAPE,
                 device: str = 'cuda', amp: Optional[str] = None) -> List[Kernel]:
    """The kernels of one training step of attention module ``name`` (``impl``: ``'mmattn'``
    or ``'plain'``, its twin) at ``shape``, as it runs on ``device``.

    ``amp`` (``'bf16'``, ``'fp16'``) traces the step under autocast instead: on CPU tensors
    under the CPU's autocast (the meta device has none), whose policy (which ops run in half
    precision) differs from CUDA's in detail, so only the difference between ours and plain
    means much.
    """
    from bench_utils import autocast
    from module_speed import build_impl, build_ours, example_inputs

    from mmattn.models.dispatch import simulated
    ours = build_ours(name, shape[1])
    where = 'meta' if amp is None else 'cpu'
    model = build_impl(impl, name, ours).to(where).train()
    inputs = [t.to(where).requires_grad_() for t in example_inputs(name, shape)]

    def step(*args):
        with autocast('cpu', amp):
            return model(*args)

    with simulated(device):
        return trace_step(step, inputs)


# mmseg's decode heads in its Cityscapes R50-D8 configs (BN for SyncBN: one process), at
# DANet's training crop, 2 x 512 x 1024 -> 2 x 64 x 128 features of each ResNet stage
HEADS = {
    'DAHead': dict(in_channels=2048, in_index=3, channels=512, pam_channels=64),
    'CCHead': dict(in_channels=2048, in_index=3, channels=512, recurrence=2),
    'ANNHead': dict(in_channels=[1024, 2048], in_index=[2, 3], channels=512,
                    project_channels=256, query_scales=(1, ), key_pool_scales=(1, 3, 6, 8)),
    'OCRHead': dict(in_channels=2048, in_index=3, channels=512, ocr_channels=256),
}
HEAD_FEATURES = (2, 64, 128)  # batch, H, W
STAGE_CHANNELS = (256, 512, 1024, 2048)


def trace_head(name: str, impl: str = 'mmattn', features=HEAD_FEATURES,
               device: str = 'cuda') -> List[Kernel]:
    """The kernels of a training forward + backward of mmseg's decode head ``name``
    (``impl='mmseg'``) or its mmattn twin ``Attn<name>`` (``'mmattn'``), as on ``device``."""
    import torch
    from mmseg.registry import MODELS as MMSEG_MODELS

    import mmattn  # noqa: F401  (the mmattn scope)
    from mmattn.models.dispatch import simulated
    from mmattn.registry import MODELS
    cfg = dict(HEADS[name], num_classes=19, dropout_ratio=0.1, norm_cfg=dict(type='BN'),
               align_corners=False)
    registry, type_ = (MMSEG_MODELS, name) if impl == 'mmseg' else (MODELS, f'mmattn.Attn{name}')
    head = registry.build(dict(type=type_, **cfg)).to('meta').train()
    batch, h, w = features
    inputs = [torch.empty(batch, c, h, w, device='meta', requires_grad=True)
              for c in STAGE_CHANNELS]
    extra = (torch.empty(batch, 19, h, w, device='meta', requires_grad=True), ) \
        if name == 'OCRHead' else ()

    def step():
        out = head(list(inputs), *extra)
        outs = out if isinstance(out, (tuple, list)) else (out, )
        return torch.cat([o.flatten() for o in outs])

    with simulated(device):
        return trace_step(step)


def compare(ours: List[Kernel], plain: List[Kernel]) -> Dict[str, object]:
    """Counts, traffic and FLOPs of both records, and the kernels only one of them runs."""
    # a kernel by its signature, traffic and FLOPs: what the signature's merged layouts
    # leave out still shows in the counts
    a = collections.Counter((k.signature, k.bytes, k.flops) for k in ours)
    b = collections.Counter((k.signature, k.bytes, k.flops) for k in plain)
    return dict(kernels=(len(ours), len(plain)),
                bytes=(sum(k.bytes for k in ours), sum(k.bytes for k in plain)),
                flops=(sum(k.flops for k in ours), sum(k.flops for k in plain)),
                largest=(max((k.largest for k in ours), default=0),
                         max((k.largest for k in plain), default=0)),
                same=a == b, only_ours=a - b, only_plain=b - a)


def _ops(counter) -> str:
    ops = collections.Counter()
    for (signature, _, _), n in counter.items():
        ops[signature.split('(', 1)[0]] += n
    return ', '.join(f'{op} x{n}' if n > 1 else op for op, n in sorted(ops.items())) or '-'


def format_table(rows: Dict[str, Dict[str, object]], shape, against='plain_modules.py',
                 what='module', other='plain', amp=None) -> str:
    where = ('float32, as run on a CUDA GPU (traced on the meta device with '
             'dispatch.simulated("cuda"))' if amp is None else
             f'{amp} autocast, as run on a CUDA GPU with the CPU\'s autocast policy (traced on '
             'CPU tensors with dispatch.simulated("cuda"))')
    lines = [
        f'Training step (forward + backward) at {tuple(shape)}, {where}; ours against '
        f'{against}.',
        '',
        f'| {what} | kernels ours / {other} | MB ours / {other} | GFLOP ours / {other} | same '
        f'kernels | only in ours | only in {other} |',
        '|---|---|---|---|---|---|---|',
    ]
    for name, r in rows.items():
        if 'error' in r:
            lines.append(f'| {name} | {r["error"]} | | | | | |')
            continue
        (ko, kp), (bo, bp), (fo, fp) = r['kernels'], r['bytes'], r['flops']
        lines.append(f'| {name} | {ko} / {kp} | {bo / 1e6:.0f} / {bp / 1e6:.0f} | '
                     f'{fo / 1e9:.2f} / {fp / 1e9:.2f} | {"yes" if r["same"] else "no"} | '
                     f'{_ops(r["only_ours"])} | {_ops(r["only_plain"])} |')
    same = sum(1 for r in rows.values() if r.get('same'))
    lines += ['', f'{same} of {len(rows)} {what}s run the same kernels as {other}.']
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--modules', nargs='+', help='registry names (default: all)')
    parser.add_argument('--shape', nargs=4, type=int, metavar='N',
                        help=f'input shape (default {SHAPE}; with --amp {AMP_SHAPE})')
    parser.add_argument('--amp', choices=AMP,
                        help='trace under autocast of this dtype, on CPU tensors with the CPU\'s '
                        'autocast policy (the meta device has no autocast)')
    parser.add_argument('--show', metavar='MODULE',
                        help="print one module's two kernel lists in order and stop")
    parser.add_argument('--heads', action='store_true',
                        help="mmseg's DA/CC/ANN/OCR decode heads against ours at DANet's "
                        'training crop (2 x 2048 x 64 x 128 features) instead of the modules')
    args = parser.parse_args(argv)
    args.shape = tuple(args.shape or (AMP_SHAPE if args.amp else SHAPE))
    if args.heads:
        rows = {name: compare(trace_head(name, 'mmattn'), trace_head(name, 'mmseg'))
                for name in HEADS}
        print(format_table(rows, (HEAD_FEATURES[0], 2048) + HEAD_FEATURES[1:],
                           "mmseg's heads", 'head', 'mmseg'))
        return

    import mmattn.models  # noqa: F401  (registers every module and rule)
    from mmattn.models.factory import attention_classes
    if args.show:
        records = {impl: trace_module(args.show, impl, args.shape, amp=args.amp)
                   for impl in ('mmattn', 'plain')}
        for impl, kernels in records.items():
            print(f'{args.show} ({impl}): {len(kernels)} kernels')
            for k in kernels:
                print(f'  {k.bytes / 1e6:9.1f} MB  {k.flops / 1e9:7.2f} GF  {k.signature}')
        diff = compare(records['mmattn'], records['plain'])
        for key, label in (('only_ours', 'only in ours'), ('only_plain', 'only in plain')):
            print(f'{label}:')
            for (signature, _, _), n in sorted(diff[key].items()):
                print(f'  {n} x {signature}')
        return
    names = args.modules or sorted(attention_classes())
    unknown = sorted(set(names) - set(attention_classes()))
    if unknown:
        parser.error(f'unknown module(s) {unknown}; registered: {sorted(attention_classes())}')
    rows = {}
    for name in names:
        try:
            rows[name] = compare(trace_module(name, 'mmattn', args.shape, amp=args.amp),
                                 trace_module(name, 'plain', args.shape, amp=args.amp))
        except (KeyError, NotImplementedError, RuntimeError) as e:
            rows[name] = dict(error=f'{type(e).__name__}: {str(e).splitlines()[0][:80]}')
    print(format_table(rows, args.shape, amp=args.amp))


if __name__ == '__main__':
    main()
