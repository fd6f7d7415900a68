"""What the benchmarks in ``tools/benchmarks`` share.

- ``--device {cpu,cuda}`` and ``--amp {fp16,bf16}`` (:func:`add_device_args`; with the
  options of a benchmark that runs each implementation in a worker process,
  :func:`add_worker_args`, and the worker's command line, :func:`run_worker`), the autocast
  context they select and the line every table starts with (:func:`env_line`: device, torch,
  CUDA, precision, threads);
- timing that waits for the device (:func:`timed`: CUDA kernels run asynchronously, so a wall
  clock read without ``torch.cuda.synchronize`` measures the launch, not the work);
- random weights (:func:`randomize`) and the relative difference (:func:`rel_diff`) the
  correctness checks print;
- the mmattn attention modules inside a model (:func:`attention_modules`).

Peak memory, on either device, is read by :mod:`mmattn.utils.memory`.
"""
import argparse
import contextlib
import os
import platform
import sys
import time
from typing import Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))

DEVICES = ('cpu', 'cuda')
AMP = ('fp16', 'bf16')


# -- device and precision -------------------------------------------------------------------------
def add_device_args(parser):
    """``--device`` and ``--amp`` with the same meaning in every benchmark."""
    parser.add_argument('--device', choices=DEVICES, default='cpu',
                        help='where to run (default: cpu); cuda times with '
                        'torch.cuda.synchronize and reads torch.cuda.max_memory_allocated')
    parser.add_argument('--amp', choices=AMP, default=None,
                        help='run the forward under torch.autocast of this dtype '
                        '(default: none, float32)')
    return parser


def add_worker_args(parser, max_quadratic_gib: float, step: str):
    """The options of a benchmark whose driver runs each implementation in a worker process of
    its own (``context_memory.py``, ``seg_heads.py``): the limit on HW x HW matrices, the
    worker's time limit, the warm-up (``step``: what one warm-up runs, e.g. ``'step'``),
    ``--device``/``--amp``, and the hidden ``--worker``/``--impl`` the driver passes its
    workers. Parse with :func:`parse_worker_args`."""
    parser.add_argument('--max-quadratic-gib', type=float, default=max_quadratic_gib,
                        help='skip implementations whose HW x HW matrices would exceed this')
    parser.add_argument('--timeout', type=int, default=3600)
    parser.add_argument('--warmup', type=int, default=None,
                        help=f'untimed full-size {step}s first (default: 0 on the CPU, 2 on '
                        f'CUDA)')
    add_device_args(parser)
    parser.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--impl', help=argparse.SUPPRESS)
    return parser


def parse_worker_args(parser, argv=None):
    """Parse the options of :func:`add_worker_args`'s benchmarks, with the warm-up's default
    for the device: on CUDA the first full-size run pays for the allocator's growth and the
    libraries' workspaces, which a timed run should not; the CPU has neither."""
    args = parser.parse_args(argv)
    if args.warmup is None:
        args.warmup = 2 if args.device == 'cuda' else 0
    return args


def run_worker(script: str, impl: str, args, extra: List[str], timeout: float):
    """Run ``script --worker --impl IMPL`` with ``extra`` and the driver's ``--device``,
    ``--warmup`` and ``--amp`` (:func:`add_worker_args`) in a fresh Python, the repository
    on its ``PYTHONPATH``: one implementation's allocations do not raise the peak memory read
    for the next. Returns the ``subprocess.CompletedProcess`` (output captured as text);
    raises ``subprocess.TimeoutExpired`` after ``timeout`` seconds."""
    import subprocess
    root = os.path.dirname(os.path.dirname(HERE))
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (root, env.get('PYTHONPATH')) if p)
    cmd = [sys.executable, os.path.abspath(script), '--worker', '--impl', impl, *extra,
           '--device', args.device, '--warmup', str(args.warmup)]
    if args.amp:
        cmd += ['--amp', args.amp]
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True,
                          timeout=timeout)


def amp_dtype(amp: Optional[str]):
    """The torch dtype of an ``--amp`` value, None for none."""
    import torch
    if amp is None:
        return None
    try:
        return {'fp16': torch.float16, 'bf16': torch.bfloat16}[amp]
    except KeyError:
        raise ValueError(f'--amp must be one of {AMP} or none, got {amp!r}') from None


def precision_name(amp: Optional[str]) -> str:
    return 'float32' if amp is None else f'float32 weights, autocast {amp_dtype(amp)}'


def check_device(device: str, tool: str):
    """Refuse ``--device cuda`` where torch has no CUDA device, naming the tool."""
    import torch
    if device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit(f'{tool}: --device cuda, but torch {torch.__version__} sees no CUDA '
                         f'device (torch.version.cuda={torch.version.cuda})')


def autocast(device: str, amp: Optional[str]):
    """``torch.autocast`` of the ``--amp`` dtype on ``device``, or a context that does nothing."""
    import torch
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=amp_dtype(amp))


def synchronize(device: str):
    """Wait for the device's queued kernels (nothing to wait for on the CPU)."""
    if str(device).startswith('cuda'):
        import torch
        torch.cuda.synchronize()


def timed(device: str, fn, *args) -> Tuple[float, object]:
    """(seconds, result) of ``fn(*args)``, the device idle before and after."""
    synchronize(device)
    start = time.perf_counter()
    result = fn(*args)
    synchronize(device)
    return time.perf_counter() - start, result


class Interrupted(Exception):
    """SIGTERM arrived (a time limit, such as each step of ``gpu_suite.sh`` has)."""


@contextlib.contextmanager
def stop_on_sigterm():
    """Raise :class:`Interrupted` on SIGTERM inside the block, so that a benchmark stopped by a
    time limit can still print what it measured (``timeout`` sends SIGTERM, then SIGKILL)."""
    import signal

    def handler(signum, frame):
        raise Interrupted(f'signal {signum}')

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            return next(line.split(':', 1)[1].strip() for line in f
                        if line.startswith('model name'))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def env_info(device: str, amp: Optional[str], threads: Optional[int] = None) -> Dict[str, str]:
    """Device name, torch and CUDA versions, precision and threads, for headers and JSON."""
    import torch
    info = dict(device=device, torch=torch.__version__, cuda=str(torch.version.cuda),
                precision=precision_name(amp),
                threads=str(threads or torch.get_num_threads()), cpu=cpu_name())
    if device == 'cuda' and torch.cuda.is_available():
        idx = torch.cuda.current_device()
        info['device_name'] = torch.cuda.get_device_name(idx)
        info['cudnn'] = str(torch.backends.cudnn.version())
        info['tf32'] = (f'conv {torch.backends.cudnn.allow_tf32}, '
                        f'matmul {torch.backends.cuda.matmul.allow_tf32}')
        info['device_memory_gib'] = (
            f'{torch.cuda.get_device_properties(idx).total_memory / 2**30:.0f}')
    else:
        info['device_name'] = info['cpu']
    return info


def env_line(device: str, amp: Optional[str], threads: Optional[int] = None) -> str:
    """The first line of every benchmark's output."""
    i = env_info(device, amp, threads)
    where = (f'{i["device_name"]} ({i["device_memory_gib"]} GiB), cuDNN {i["cudnn"]}, '
             f'TF32 {i["tf32"]}' if 'cudnn' in i else i['device_name'])
    return (f'device: {device}, {where}; torch {i["torch"]}, CUDA {i["cuda"]}; '
            f'{i["precision"]}; {i["threads"]} CPU thread(s)')


# -- weights and comparisons ----------------------------------------------------------------------
def randomize(module, seed=0, scale=0.5):
    """Random parameters (std scale / sqrt(fan-in) for weights, scale for vectors) and random
    batch-norm running statistics; fixed buffers (FcaNet's DCT basis) are left alone.

    Zero-initialised gates and gammas (Non-local's BN, DANet's gamma) would make a module the
    identity and hide its attention path from a comparison.
    """
    import torch
    from torch.nn.modules.batchnorm import _BatchNorm
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            std = scale / p[0].numel()**0.5 if p.dim() >= 2 else scale
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * std)
        for m in module.modules():
            if isinstance(m, _BatchNorm) and m.track_running_stats:
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return module


def rel_diff(a, b):
    """max |a - b| / max |b| (0 when both are 0), in float64."""
    a, b = a.double(), b.double()
    scale = b.abs().max().item()
    diff = (a - b).abs().max().item()
    return diff / scale if scale else diff


# -- attention modules inside a model ---------------------------------------------------------
def attention_name(module) -> Optional[str]:
    """The mmattn registry name of an attention module, None for anything else."""
    from mmattn.models.base import BaseAttention
    from mmattn.models.factory import attention_classes
    if not isinstance(module, BaseAttention):
        return None
    for name, cls in attention_classes().items():
        if type(module) is cls:
            return name
    return type(module).__name__  # a subclass that is not registered: its class name


def attention_modules(model) -> List[Tuple[str, str]]:
    """(path, registry name) of the outermost mmattn attention modules in ``model``."""
    found = []

    def visit(module, prefix):
        for child_name, child in module.named_children():
            path = f'{prefix}.{child_name}' if prefix else child_name
            name = attention_name(child)
            if name is not None:
                found.append((path, name))
            else:
                visit(child, path)

    visit(model, '')
    return found
