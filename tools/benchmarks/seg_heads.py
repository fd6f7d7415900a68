"""Whole-image inference memory and time of mmattn's DANet head against mmseg's.

The case is DANet on a 1024 x 2048 Cityscapes image: the ResNet-D8 backbone gives a 1/8 map of
2048 channels at 128 x 256, and the head (``channels=512``, ``pam_channels=64``, 19 classes,
mmseg's ``danet_r50-d8`` config) predicts logits resized to the whole image
(``head.predict``, as ``EncoderDecoder.whole_inference`` calls it). mmseg's ``DAHead`` holds
the 32768 x 32768 position-attention energies and their softmax (4 GiB each in float32);
``mmattn.AttnDAHead`` (the lean path, its default) holds neither.

Implementations: ``mmseg`` (``DAHead``), ``ours`` (``mmattn.AttnDAHead``) and ``ours-explicit``
(``AttnDAHead(lean=False)``, the explicit matrix, as a control). Each runs in a fresh process,
in evaluation mode without autograd: one warm-up on a small map, then ``--repeat`` timed calls;
the memory is the growth of the process's peak resident memory (``ru_maxrss``) over the first
full-size call. The weights are mmseg's initialisation with both attention gammas set to 0.5 (at
0 the attention would not show in the outputs), loaded into ours; the logits of every
implementation are compared with mmseg's.

On a GPU (``--device cuda``): ``--warmup`` full-size calls first (default 2 there, 0 on the
CPU), each call bracketed by ``torch.cuda.synchronize()``, times in ms, and the memory is the
growth of ``torch.cuda.max_memory_allocated`` over the first timed call after
``reset_peak_memory_stats`` (:mod:`mmattn.utils.memory`), each implementation still in a fresh
process. ``--amp fp16|bf16`` runs the head under ``torch.autocast``; the logits are then
compared with mmseg's at a tolerance of that precision.

Usage::

    python tools/benchmarks/seg_heads.py                      # 2048 channels in at 128 x 256
    python tools/benchmarks/seg_heads.py --feat-size 64 128   # smaller
    python tools/benchmarks/seg_heads.py --impls ours mmseg --repeat 2
    python tools/benchmarks/seg_heads.py --device cuda --amp bf16 --repeat 10
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
from bench_utils import (add_worker_args, autocast, check_device, env_line,  # noqa: E402
                         parse_worker_args, run_worker, timed)

# relative difference from mmseg's logits above which a row fails: float32 rounding, or that
# of the autocast dtype
TOLERANCE = 1e-4
AMP_TOLERANCE = {'fp16': 1e-2, 'bf16': 5e-2}
IMPLS = ('mmseg', 'ours', 'ours-explicit')
# HW x HW float32 matrices an implementation holds at its peak in inference
QUADRATIC = {'mmseg': 2, 'ours': 0, 'ours-explicit': 2}


# -- worker: one implementation, in its own process --------------------------------------------
def build_head(impl, args):
    import torch
    from mmseg.registry import MODELS as MMSEG_MODELS

    import mmattn  # noqa: F401  (registers the mmattn scope)
    from mmattn.registry import MODELS
    cfg = dict(in_channels=args.in_channels, channels=args.channels,
               pam_channels=args.pam_channels, num_classes=args.num_classes,
               norm_cfg=dict(type='BN'), align_corners=False)
    torch.manual_seed(0)
    ref = MMSEG_MODELS.build(dict(type='DAHead', **cfg))
    ref.init_weights()
    with torch.no_grad():
        ref.pam.gamma.scale.fill_(0.5)
        ref.cam.gamma.scale.fill_(0.5)
    if impl == 'mmseg':
        return ref
    ours = MODELS.build(dict(type='mmattn.AttnDAHead', lean=impl == 'ours', **cfg))
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ours


def worker(args):
    import warnings
    warnings.filterwarnings('ignore')
    import torch
    from mmattn.utils.memory import peak_bytes, reset_peak
    torch.set_num_threads(args.threads or torch.get_num_threads())
    device = args.device
    head = build_head(args.impl, args).eval().to(device)
    h, w = args.feat_size
    metas = [dict(img_shape=tuple(args.image_size), pad_shape=tuple(args.image_size))]

    def predict(x):
        with torch.no_grad(), autocast(device, args.amp):
            return head.predict([x], metas, dict())

    # warm-up: kernels, thread pools
    predict(torch.randn(1, args.in_channels, 8, 16).to(device))
    x = torch.randn(1, args.in_channels, h, w,
                    generator=torch.Generator().manual_seed(1)).to(device)
    for _ in range(args.warmup):  # full size: the CUDA allocator and library workspaces
        predict(x)
    if device == 'cuda':
        reset_peak(device)
        before = peak_bytes(device)
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for i in range(args.repeat):
        elapsed, logits = timed(device, predict, x)
        times.append(elapsed)
        if i == 0:
            if device == 'cuda':
                peak = peak_bytes(device) - before
            else:
                peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    torch.save(logits.float().cpu(), args.out)
    print(json.dumps(dict(peak_bytes=peak, seconds=times, threads=torch.get_num_threads())))


# -- driver ------------------------------------------------------------------------------------
def run_impl(impl, args, out_path):
    extra = ['--out', out_path, '--in-channels', str(args.in_channels), '--channels',
             str(args.channels), '--pam-channels', str(args.pam_channels), '--num-classes',
             str(args.num_classes), '--repeat', str(args.repeat), '--threads',
             str(args.threads), '--feat-size', *map(str, args.feat_size), '--image-size',
             *map(str, args.image_size)]
    try:
        proc = run_worker(__file__, impl, args, extra, args.timeout)
    except subprocess.TimeoutExpired:
        return dict(error=f'timed out after {args.timeout} s')
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ''
        return dict(error=f'exit {proc.returncode} {last}'.strip())
    return json.loads(proc.stdout.strip().splitlines()[-1])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--impls', nargs='+', choices=IMPLS, default=['ours', 'mmseg'])
    parser.add_argument('--in-channels', type=int, default=2048)
    parser.add_argument('--channels', type=int, default=512)
    parser.add_argument('--pam-channels', type=int, default=64)
    parser.add_argument('--num-classes', type=int, default=19)
    parser.add_argument('--feat-size', type=int, nargs=2, default=[128, 256],
                        help='H W of the feature map (default: 1/8 of 1024 x 2048)')
    parser.add_argument('--image-size', type=int, nargs=2, default=None,
                        help='H W the logits are resized to (default: 8 x the feature size)')
    parser.add_argument('--repeat', type=int, default=2, help='timed calls after the warm-up')
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: default)')
    add_worker_args(parser, max_quadratic_gib=12.0, step='call')
    parser.add_argument('--out', help=argparse.SUPPRESS)
    args = parse_worker_args(parser, argv)
    if args.image_size is None:
        args.image_size = [8 * s for s in args.feat_size]
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(args)

    import torch
    check_device(args.device, 'seg_heads')
    cuda = args.device == 'cuda'
    tolerance = AMP_TOLERANCE[args.amp] if args.amp else TOLERANCE
    h, w = args.feat_size
    pixels = h * w
    print(f'DANet head, whole-image inference: features (1, {args.in_channels}, {h}, {w}) -> '
          f'logits (1, {args.num_classes}, {args.image_size[0]}, {args.image_size[1]}); '
          f'channels={args.channels}, pam_channels={args.pam_channels}')
    if cuda:
        print(env_line(args.device, args.amp, args.threads or None)
              + f'; one HW x HW float32 matrix = {pixels**2 * 4 / 2**30:.2f} GiB')
        print(f'peak MiB: growth of CUDA max allocated over the first timed call; '
              f'{args.repeat} timed calls after {args.warmup} full-size warm-up call(s)')
    else:
        print(f'torch {torch.__version__}, CPU, {args.threads or torch.get_num_threads()} '
              f'threads, ' + (f'autocast {args.amp}' if args.amp else 'float32')
              + f'; one HW x HW matrix = {pixels**2 * 4 / 2**30:.2f} GiB')
    unit = 'ms' if cuda else 's'
    header = (f'{"implementation":<34} {"peak MiB":>9} {f"time {unit} (each call)":>22} '
              f'{"max|diff| / max|mmseg|":>24} {"argmax agree":>13}')
    print(header)
    print('-' * len(header))
    order = ['mmseg'] + [i for i in args.impls if i != 'mmseg'] if 'mmseg' in args.impls \
        else list(args.impls)
    names = {'mmseg': 'mmseg DAHead', 'ours': 'mmattn AttnDAHead (lean, default)',
             'ours-explicit': 'mmattn AttnDAHead (lean=False)'}
    rows, reference, status = {}, None, 0
    with tempfile.TemporaryDirectory() as tmp:
        for impl in order:
            need = QUADRATIC[impl] * pixels**2 * 4 / 2**30
            if need > args.max_quadratic_gib:
                rows[impl] = f'{names[impl]:<34} skipped: needs ~{need:.0f} GiB of matrices'
                continue
            out_path = os.path.join(tmp, f'{impl}.pt')
            res = run_impl(impl, args, out_path)
            if 'error' in res:
                rows[impl] = f'{names[impl]:<34} failed: {res["error"][:100]}'
                status = 1
                continue
            logits = torch.load(out_path)
            if reference is None and impl == 'mmseg':
                reference, diff, agree = logits, '(reference)', ''
            elif reference is not None:
                rel = ((logits - reference).abs().max() / reference.abs().max()).item()
                same = (logits.argmax(1) == reference.argmax(1)).float().mean().item()
                diff, agree = f'{rel:.1e}', f'{100 * same:.3f}%'
                if rel > tolerance:
                    status = 1
            else:
                diff, agree = 'n/a', ''
            times = ' '.join(f'{t * 1e3:.3g}' if cuda else f'{t:.2f}' for t in res['seconds'])
            rows[impl] = (f'{names[impl]:<34} {res["peak_bytes"] / 2**20:>9.0f} {times:>22} '
                          f'{diff:>24} {agree:>13}')
            print(rows[impl], flush=True)
    for impl in order:
        if 'skipped' in rows.get(impl, '') or 'failed' in rows.get(impl, ''):
            print(rows[impl])
    if status:
        print(f'\nsome implementation failed or disagreed with mmseg (relative {tolerance:g})')
    return status


if __name__ == '__main__':
    sys.exit(main())
