"""Time and peak memory of each path of the lean pixel-to-pixel attention, per module and size.

The rules of :mod:`mmattn.models.context.attention_ops` pick a path by device, dtype and size
from issue #13's H200 figures; this prints what each path costs, so that a rule can be checked
against a measurement (and changed where another path wins). For every case (module and input
size) and every path of ``softmax_attention`` (each forced with ``dispatch.forced``, plus
``rule``: what the rule picks, named), one training step (forward + backward, training mode)
after ``--warmup`` steps, median of ``--repeat``; on CUDA the time is synchronised and the
memory is ``torch.cuda.max_memory_allocated`` above what the module and input hold. On the CPU
no memory is printed (``tools/benchmarks/context_memory.py`` measures it in fresh processes);
there a path whose HW x HW matrices would exceed ``--max-quadratic-gib`` is skipped.

Usage (the issue's targets; one H200 took 87 ms for PAM's explicit fp32 step at 128 x 256)::

    python tools/benchmarks/attention_paths.py --device cuda --amp bf16
    python tools/benchmarks/attention_paths.py --device cuda
    python tools/benchmarks/attention_paths.py --cases pam:1x64x16x16 --repeat 2   # CPU check
"""
import argparse
import statistics
import sys

import torch
from bench_utils import timed

PATHS = ('explicit', 'sdpa', 'sdpa_heads', 'blocked')
CASES = ('pam:2x512x64x128', 'nonlocal:2x512x64x128', 'pam:1x512x128x256',
         'nonlocal:1x512x128x256')


def parse_case(text):
    """'pam:2x512x64x128' -> ('pam', (2, 512, 64, 128))."""
    name, _, size = text.partition(':')
    shape = tuple(int(s) for s in size.split('x'))
    if name not in ('pam', 'nonlocal') or len(shape) != 4:
        raise argparse.ArgumentTypeError(f'a case is pam|nonlocal:NxCxHxW, got {text!r}')
    return name, shape


def build(name, channels, device):
    from mmattn.models.context import DANetPAM, NonLocal
    torch.manual_seed(0)
    m = DANetPAM(channels) if name == 'pam' else NonLocal(channels)
    with torch.no_grad():
        for p in m.parameters():  # gamma and the zero-initialised norm would hide the branch
            p.normal_(0, 0.05)
    return m.to(device).train()


def step_time(module, x, amp, repeat, warmup):
    """Median seconds of a training step, and the peak bytes above the start (CUDA)."""
    cuda = x.device.type == 'cuda'

    def step():
        with torch.autocast(x.device.type, dtype=amp, enabled=amp is not None):
            out = module(x)
        out.float().sum().backward()
        x.grad = None
        module.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated() if cuda else 0
    times = [timed(x.device.type, step)[0] for _ in range(repeat)]
    peak = torch.cuda.max_memory_allocated() - base if cuda else None
    return statistics.median(times), peak


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--amp', choices=('fp16', 'bf16'), default=None)
    parser.add_argument('--cases', nargs='+', type=parse_case,
                        default=[parse_case(c) for c in CASES])
    parser.add_argument('--paths', nargs='+', choices=PATHS + ('rule', ), default=None)
    parser.add_argument('--repeat', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--max-quadratic-gib', type=float, default=4.0,
                        help='CPU only: skip explicit/sdpa cases whose HW x HW matrix is larger')
    args = parser.parse_args(argv)
    from mmattn.models.context import attention_ops as ops
    from mmattn.models.dispatch import forced

    amp = {'fp16': torch.float16, 'bf16': torch.bfloat16, None: None}[args.amp]
    device = torch.device(args.device)
    cuda = device.type == 'cuda'
    where = torch.cuda.get_device_name(device) if cuda else 'CPU'
    print(f'{where}, torch {torch.__version__}'
          + (f', CUDA {torch.version.cuda}' if cuda else '')
          + f', {args.amp or "fp32"}, training step, median of {args.repeat}')
    print('| case | path | ms | peak MiB |')
    print('|---|---|---|---|')
    for name, shape in args.cases:
        n, c, h, w = shape
        m = build(name, c, device)
        x = torch.randn(shape, device=device, requires_grad=True)
        d = m.key_channels if name == 'pam' else m.inter_channels
        e = c if name == 'pam' else m.inter_channels
        dtype = amp or torch.float32
        rule = ops.choose_softmax_path(device.type, dtype, n, h * w, h * w, d, e, True)
        case = f'{name} {n}x{c}x{h}x{w}'
        for path in args.paths or (('rule', ) + PATHS):
            quadratic = n * (h * w)**2 * 4 / 2**30
            if not cuda and path in ('explicit', 'sdpa') and quadratic > args.max_quadratic_gib:
                print(f'| {case} | {path} | skipped: {quadratic:.1f} GiB matrix | |')
                continue
            label = f'rule ({rule})' if path == 'rule' else path
            try:
                with forced('softmax_attention', rule if path == 'rule' else path):
                    sec, peak = step_time(m, x, amp, args.repeat, args.warmup)
            except torch.OutOfMemoryError:
                print(f'| {case} | {label} | out of memory | |')
                torch.cuda.empty_cache()
                continue
            mib = f'{peak / 2**20:.0f}' if peak is not None else '-'
            print(f'| {case} | {label} | {sec * 1e3:.1f} | {mib} |', flush=True)
        del m, x
        if cuda:
            torch.cuda.empty_cache()
    return 0


if __name__ == '__main__':
    sys.exit(main())
