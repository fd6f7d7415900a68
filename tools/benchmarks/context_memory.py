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

Usage::

    python tools/benchmarks/context_memory.py                 # the sizes above
    python tools/benchmarks/context_memory.py --scale 0.25    # a quick check
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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
    from tests.helpers import randomize_
    if family == 'NonLocal':
        m = NonLocal(channels, lean=lean)
    elif family == 'PAM':
        m = DANetPAM(channels, lean=lean)
    else:
        m = CrissCross(channels, recurrence=1)
    randomize_(m, seed=0, scale=0.05)
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
    import torch

    from mmattn.utils.memory import proc_status_bytes
    family = next(f for f, n, _ in IMPLS if n == args.impl)
    try:
        if args.impl.startswith('mmattn'):
            m = _ours(family, args.shape[1], lean='explicit' not in args.impl)
        else:
            m = _reference(family, args.impl, args.shape[1])
    except ImportError as e:
        print(json.dumps(dict(missing=f'{type(e).__name__}: {e}')))
        return
    train = args.mode == 'train'
    m.train(train)

    def step(x):
        if train:
            x.requires_grad_()
            out = m(x)
            out.sum().backward()
            return out.detach()
        with torch.no_grad():
            return m(x)

    torch.manual_seed(1)
    step(torch.randn(*args.shape[:2], 8, 8))  # warm-up: kernels, thread pools
    x = torch.randn(*args.shape, generator=torch.Generator().manual_seed(2))
    before = proc_status_bytes('VmHWM')
    seconds = []
    for i in range(args.repeat):
        start = time.perf_counter()
        out = step(x)
        seconds.append(time.perf_counter() - start)
        if i == 0:
            peak = proc_status_bytes('VmHWM') - before
            torch.save(out - x.detach(), args.out)  # the attention branch: x would dominate
        x.grad = None
        del out
    print(json.dumps(dict(peak_bytes=peak, seconds=seconds)))


# -- driver ------------------------------------------------------------------------------------
def run_case(impl, shape, mode, out_path, timeout, repeat):
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (ROOT, env.get('PYTHONPATH')) if p)
    cmd = [sys.executable, os.path.abspath(__file__), '--worker', '--impl', impl, '--mode', mode,
           '--out', out_path, '--repeat', str(repeat), '--shape'] + [str(s) for s in shape]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(error=f'timed out after {timeout} s')
    if proc.returncode != 0:
        return dict(error=proc.stderr.strip().splitlines()[-1] if proc.stderr else 'failed')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--scale', type=float, default=1.0, help='multiplies H and W')
    parser.add_argument('--channels', type=int, default=512)
    parser.add_argument('--max-quadratic-gib', type=float, default=6.0,
                        help='skip implementations whose HW x HW matrices would exceed this')
    parser.add_argument('--families', nargs='+', default=['NonLocal', 'PAM', 'CrissCross'])
    parser.add_argument('--timeout', type=int, default=3600)
    parser.add_argument('--repeat', type=int, default=3, help='timed steps per implementation')
    parser.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--impl', help=argparse.SUPPRESS)
    parser.add_argument('--mode', help=argparse.SUPPRESS)
    parser.add_argument('--out', help=argparse.SUPPRESS)
    parser.add_argument('--shape', type=int, nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    import torch
    c = args.channels
    cases = [('fwd+bwd', 'train', [1, c, round(64 * args.scale), round(128 * args.scale)]),
             ('fwd', 'eval', [1, c, round(128 * args.scale), round(256 * args.scale)])]
    device = 'CPU' if not torch.cuda.is_available() else 'CPU (CUDA available, unused)'
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, {device}')
    header = (f'{"case":<26} {"implementation":<28} {"peak MiB":>9} {"time s min/med":>15} '
              f'{"branch max|diff|/max":>22}')
    print(header)
    print('-' * len(header))
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, mode, shape in cases:
            pixels = shape[2] * shape[3]
            case = f'{label} {tuple(shape)}'
            for family in args.families:
                lean_out = None
                for fam, impl, quadratic in IMPLS:
                    if fam != family:
                        continue
                    n_mats = (3 if mode == 'train' else 2) if quadratic else 0
                    need = n_mats * pixels**2 * 4 / 2**30
                    if need > args.max_quadratic_gib:
                        print(f'{case:<26} {impl:<28} {"skipped: needs ~%.0f GiB" % need:>41}')
                        continue
                    out_path = os.path.join(tmp, 'out.pt')
                    res = run_case(impl, shape, mode, out_path, args.timeout, args.repeat)
                    if 'missing' in res or 'error' in res:
                        msg = res.get('missing') or res['error']
                        print(f'{case:<26} {impl:<28} {"n/a: " + msg[:80]}')
                        continue
                    out = torch.load(out_path)
                    if lean_out is None:
                        lean_out, diff = out, '(reference)'
                    else:
                        rel = ((out - lean_out).abs().max() / lean_out.abs().max()).item()
                        diff = f'{rel:.1e}'
                        if rel > 1e-4:
                            failures.append(f'{case} {impl}: {rel:.1e}')
                    ts = sorted(res['seconds'])
                    times = f'{ts[0]:.2f}/{ts[len(ts) // 2]:.2f}'
                    print(f'{case:<26} {impl:<28} {res["peak_bytes"] / 2**20:>9.0f} '
                          f'{times:>15} {diff:>22}')
    if failures:
        print('\noutputs that disagree with the lean path (relative 1e-4):')
        for f in failures:
            print('  ' + f)
        return 1
    print('\nall outputs agree with the lean path (relative 1e-4)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
