"""Peak memory and time of the pixel-to-pixel attention modules, ours against OpenMMLab's.

Cases (the defaults; ``--scale`` shrinks H and W, ``--channels`` C):

- forward + backward (training mode) at (1, 512, 64, 128);
- forward only (evaluation, no autograd) at (1, 512, 128, 256).

Implementations: mmattn's ``NonLocal`` (lean and ``lean=False``) against mmcv's ``NonLocal2d``;
mmattn's ``DANetPAM`` (lean and explicit) against mmseg's ``PAM``
(``mmseg.models.decode_heads.da_head.PAM``); mmattn's ``CrissCross`` against
``mmcv.ops.CrissCrossAttention`` (R = 1 for both). Each implementation runs in a fresh process:
the growth of its peak resident memory (``VmHWM``: ``ru_maxrss`` would start from the parent's
high-water mark) over the first full-size step after a small warm-up, and the wall time of
``--repeat`` steps (min and median; on a shared machine the minimum is the better estimate). The
weights are shared (ours are randomised, then copied into the reference), and every module's
attention branch (output - input) is compared with the lean one's, relative to its largest
magnitude. An implementation that is not installed is reported as missing;
one whose HW x HW matrices would exceed ``--max-quadratic-gib`` is skipped.

On a GPU (``--device cuda``): ``--warmup`` full-size steps first (default 2 there, 0 on the
CPU), every step bracketed by ``torch.cuda.synchronize()``, times in ms (min and median), and
the memory is the growth of ``torch.cuda.max_memory_allocated`` over the first timed step after
``reset_peak_memory_stats`` (:mod:`mmattn.utils.memory`). There each implementation runs all
the cases in one fresh process (the allocator's peak resets exactly between cases); on the CPU
each case still gets its own. ``--amp fp16|bf16`` runs the forward under ``torch.autocast``;
outputs are then compared at a tolerance of that precision (``AMP_TOLERANCE``).
``--train-shapes`` / ``--eval-shapes`` (``NxCxHxW``, any number, none for none) replace the
two default cases.

Usage::

    python tools/benchmarks/context_memory.py                 # the sizes above
    python tools/benchmarks/context_memory.py --scale 0.25    # a quick check
    python tools/benchmarks/context_memory.py --device cuda --amp bf16 --families PAM NonLocal \\
        --train-shapes 2x512x64x128 1x512x128x256 --eval-shapes --max-quadratic-gib 60
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
from bench_utils import (Interrupted, add_worker_args, autocast,  # noqa: E402
                         check_device, env_line, parse_worker_args, randomize, run_worker,
                         stop_on_sigterm, timed)

# relative difference from the lean path above which an output is reported: float32 rounding,
# or that of the autocast dtype
TOLERANCE = 1e-4
AMP_TOLERANCE = {'fp16': 1e-2, 'bf16': 5e-2}

# (family, implementation, whether it holds HW x HW matrices: about two at the peak of a
# forward (the energies and their softmax), three with autograd)
IMPLS = [
    ('NonLocal', 'mmattn NonLocal (lean)', False),
    ('NonLocal', 'mmattn NonLocal (explicit)', True),
    ('NonLocal', 'mmcv NonLocal2d', True),
    ('PAM', 'mmattn DANetPAM (lean)', False),
    ('PAM', 'mmattn DANetPAM (explicit)', True),
    ('PAM', 'mmseg PAM', True),
    ('CrissCross', 'mmattn CrissCross (R=1)', False),
    ('CrissCross', 'mmcv CrissCrossAttention', False),
]


# -- worker: one implementation, one case, in its own process ---------------------------------
def _ours(family, channels, lean):
    from mmattn.models.context import CrissCross, DANetPAM, NonLocal
    if family == 'NonLocal':
        m = NonLocal(channels, lean=lean)
    elif family == 'PAM':
        m = DANetPAM(channels, lean=lean)
    else:
        m = CrissCross(channels, recurrence=1)
    randomize(m, seed=0, scale=0.05)
    import torch
    with torch.no_grad():
        # Unit-variance projections without biases (random biases would dominate them and
        # flatten the attention) and a branch as large as the input, so that comparing outputs
        # tests the attention itself. mmcv's NonLocal2d has no bias in its output conv anyway.
        for conv in m.modules():
            if isinstance(conv, torch.nn.Conv2d):
                conv.weight.mul_(conv.weight[0].numel()**-0.5 / conv.weight.std())
                if conv.bias is not None:
                    conv.bias.zero_()
        if family == 'NonLocal':
            m.norm.weight.fill_(1.0)
            m.norm.bias.zero_()
        else:
            m.gamma.fill_(1.0)
    return m


def _reference(family, name, channels):
    """The OpenMMLab module with our randomised weights."""
    import torch
    ours = _ours(family, channels, lean=True)
    if name == 'mmcv NonLocal2d':
        from mmcv.cnn import NonLocal2d
        ref = NonLocal2d(channels, norm_cfg=dict(type='BN'))
        for theirs, mine in [(ref.g.conv, ours.g), (ref.theta.conv, ours.theta),
                             (ref.phi.conv, ours.phi), (ref.conv_out.bn, ours.norm)]:
            theirs.load_state_dict(mine.state_dict())
        ref.conv_out.conv.weight.data.copy_(ours.conv_out.weight)
    elif name == 'mmseg PAM':
        from mmseg.models.decode_heads.da_head import PAM
        ref = PAM(channels, ours.key_channels)
        for theirs, mine in [(ref.query_project, ours.query_conv),
                             (ref.key_project, ours.key_conv),
                             (ref.value_project, ours.value_conv)]:
            theirs.load_state_dict(mine.state_dict())
        with torch.no_grad():
            ref.gamma.scale.copy_(ours.gamma.reshape(ref.gamma.scale.shape))
    else:
        from mmcv.ops import CrissCrossAttention
        ref = CrissCrossAttention(channels)
        state = ours.state_dict()
        state['gamma.scale'] = state.pop('gamma')
        ref.load_state_dict(state)
    return ref


def worker(args):
    """One implementation, every case of ``args.cases`` in turn; one JSON list on stdout."""
    import torch

    from mmattn.utils.memory import peak_bytes, reset_peak
    family = next(f for f, n, _ in IMPLS if n == args.impl)
    device = args.device
    try:
        if args.impl.startswith('mmattn'):
            m = _ours(family, args.channels, lean='explicit' not in args.impl)
        else:
            m = _reference(family, args.impl, args.channels)
    except ImportError as e:
        print(json.dumps([dict(missing=f'{type(e).__name__}: {e}')]))
        return
    m.to(device)
    results = []
    for mode, shape, out_path in json.loads(args.cases):
        train = mode == 'train'
        m.train(train)

        def step(x):
            if train:
                x.requires_grad_()
                with autocast(device, args.amp):
                    out = m(x)
                out.float().sum().backward()
                return out.detach()
            with torch.no_grad(), autocast(device, args.amp):
                return m(x)

        torch.manual_seed(1)
        step(torch.randn(*shape[:2], 8, 8).to(device))  # warm-up: kernels, thread pools
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(2)).to(device)
        for _ in range(args.warmup):  # full size: the CUDA allocator and library workspaces
            step(x)
            x.grad = None
        if device == 'cuda':
            reset_peak(device)  # the CPU reading stays the growth over the high-water mark
        before = peak_bytes(device)
        seconds = []
        for i in range(args.repeat):
            elapsed, out = timed(device, step, x)
            seconds.append(elapsed)
            if i == 0:
                peak = peak_bytes(device) - before
                # the attention branch (x would dominate), in float32 on the CPU
                torch.save((out.float() - x.detach()).cpu(), out_path)
            x.grad = None
            del out
        results.append(dict(peak_bytes=peak, seconds=seconds))
        del x
    print(json.dumps(results))


# -- driver ------------------------------------------------------------------------------------
def run_cases(impl, cases, args):
    """Run ``cases`` ([mode, shape, out_path], ...) of one implementation in a fresh process;
    one result per case (an error or a missing module is given to every case)."""
    try:
        proc = run_worker(__file__, impl, args,
                          ['--cases', json.dumps(cases), '--repeat', str(args.repeat),
                           '--channels', str(args.channels)], args.timeout * len(cases))
    except subprocess.TimeoutExpired:
        return [dict(error=f'timed out after {args.timeout * len(cases)} s')] * len(cases)
    if proc.returncode != 0:
        err = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'failed'
        return [dict(error=err)] * len(cases)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    return res * len(cases) if len(res) == 1 and 'missing' in res[0] else res


def parse_shape(text):
    """'2x512x64x128' -> [2, 512, 64, 128]."""
    try:
        shape = [int(v) for v in text.lower().split('x')]
    except ValueError:
        shape = []
    if len(shape) != 4 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f'context_memory: a shape is NxCxHxW, got {text!r}')
    return shape


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--scale', type=float, default=1.0, help='multiplies H and W')
    parser.add_argument('--channels', type=int, default=512)
    parser.add_argument('--families', nargs='+', default=['NonLocal', 'PAM', 'CrissCross'])
    parser.add_argument('--train-shapes', type=parse_shape, nargs='*', default=None,
                        help='training-step cases NxCxHxW (default: 1x512x64x128, scaled)')
    parser.add_argument('--eval-shapes', type=parse_shape, nargs='*', default=None,
                        help='inference cases NxCxHxW (default: 1x512x128x256, scaled)')
    parser.add_argument('--repeat', type=int, default=3, help='timed steps per implementation')
    add_worker_args(parser, max_quadratic_gib=6.0, step='step')
    parser.add_argument('--cases', help=argparse.SUPPRESS)
    return parse_worker_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(args)

    import torch
    check_device(args.device, 'context_memory')
    c = args.channels
    cases = []
    if args.train_shapes is None:
        cases.append(('fwd+bwd', 'train',
                      [1, c, round(64 * args.scale), round(128 * args.scale)]))
    else:
        cases += [('fwd+bwd', 'train', s) for s in args.train_shapes]
    if args.eval_shapes is None:
        cases.append(('fwd', 'eval', [1, c, round(128 * args.scale), round(256 * args.scale)]))
    else:
        cases += [('fwd', 'eval', s) for s in args.eval_shapes]
    if any(shape[1] != c for _, _, shape in cases):
        raise SystemExit(f'context_memory: every shape needs C = --channels = {c}, got '
                         f'{[shape for _, _, shape in cases]}')
    cuda = args.device == 'cuda'
    tolerance = AMP_TOLERANCE[args.amp] if args.amp else TOLERANCE
    if cuda:
        print(env_line(args.device, args.amp))
    else:
        device = 'CPU' if not torch.cuda.is_available() else 'CPU (CUDA available, unused)'
        print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, {device}'
              + (f', autocast {args.amp}' if args.amp else ''))
    unit = 'ms' if cuda else 's'
    what = 'CUDA max allocated' if cuda else 'peak RSS'
    header = (f'{"case":<26} {"implementation":<28} {"peak MiB":>9} '
              f'{"time " + unit + " min/med":>15} {"branch max|diff|/max":>22}')
    print(f'peak MiB: growth of the {what} over the first timed step; time: '
          f'{args.repeat} steps after {args.warmup} full-size warm-up step(s)')
    print(header)
    print('-' * len(header))

    # every (case, implementation) to run, and the ones skipped for their quadratic memory
    jobs, skipped = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for ci, (label, mode, shape) in enumerate(cases):
            pixels = shape[2] * shape[3]
            for family in args.families:
                for fam, impl, quadratic in IMPLS:
                    if fam != family:
                        continue
                    n_mats = (3 if mode == 'train' else 2) if quadratic else 0
                    need = n_mats * shape[0] * pixels**2 * 4 / 2**30
                    if need > args.max_quadratic_gib:
                        skipped[ci, impl] = need
                    else:
                        jobs.append((ci, impl, os.path.join(tmp, f'out{ci}_{len(jobs)}.pt')))
        # CUDA: one process per implementation for all its cases; CPU: one per case
        results = {}
        groups = {}
        for job in jobs:
            groups.setdefault(job[1] if cuda else (job[1], job[0]), []).append(job)
        interrupted = False
        try:
            with stop_on_sigterm():  # a time limit still gets the rows measured
                for group in groups.values():
                    impl = group[0][1]
                    res = run_cases(impl, [[cases[ci][1], cases[ci][2], path]
                                           for ci, _, path in group], args)
                    for (ci, _, path), r in zip(group, res):
                        results[ci, impl] = (r, path)
        except Interrupted:
            interrupted = True
        for ci, impl, path in jobs:
            results.setdefault((ci, impl), (dict(error='not run: interrupted (SIGTERM)'), path))

        failures = []
        compared = unmeasured = 0
        for ci, (label, mode, shape) in enumerate(cases):
            case = f'{label} {tuple(shape)}'
            for family in args.families:
                lean_out = None
                for fam, impl, _ in IMPLS:
                    if fam != family:
                        continue
                    if (ci, impl) in skipped:
                        print(f'{case:<26} {impl:<28} '
                              f'{"skipped: needs ~%.0f GiB" % skipped[ci, impl]:>41}')
                        continue
                    res, out_path = results[ci, impl]
                    if 'missing' in res or 'error' in res:
                        msg = res.get('missing') or res['error']
                        print(f'{case:<26} {impl:<28} {"n/a: " + msg[:80]}')
                        unmeasured += 1
                        continue
                    out = torch.load(out_path)
                    if lean_out is None:
                        lean_out, diff = out, '(reference)'
                    else:
                        compared += 1
                        rel = ((out - lean_out).abs().max() / lean_out.abs().max()).item()
                        diff = f'{rel:.1e}'
                        if rel > tolerance:
                            failures.append(f'{case} {impl}: {rel:.1e}')
                    ts = sorted(t * (1e3 if cuda else 1) for t in res['seconds'])
                    times = (f'{ts[0]:.3g}/{ts[len(ts) // 2]:.3g}' if cuda else
                             f'{ts[0]:.2f}/{ts[len(ts) // 2]:.2f}')
                    print(f'{case:<26} {impl:<28} {res["peak_bytes"] / 2**20:>9.0f} '
                          f'{times:>15} {diff:>22}')
    if interrupted:
        print('\nINTERRUPTED (SIGTERM, e.g. a time limit): the rows marked "not run" are missing')
    if failures:
        print(f'\noutputs that disagree with the lean path (relative {tolerance:g}):')
        for f in failures:
            print('  ' + f)
        return 1
    if unmeasured:
        print(f'\n{unmeasured} row(s) not measured (n/a above)')
    if compared:
        print(f'\nall {compared} compared outputs agree with the lean path '
              f'(relative {tolerance:g})')
    else:
        print('\nno outputs compared: no case has a second implementation measured beside '
              'the first')
    return 1 if interrupted else 0


if __name__ == '__main__':
    sys.exit(main())
