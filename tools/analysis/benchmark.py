"""Inference speed (images/s) and peak memory of an mmdet or mmseg config, on a GPU or the CPU.

    python tools/analysis/benchmark.py configs/faster_rcnn_se_r50_coco.py --shape 800 1333
    python tools/analysis/benchmark.py configs/toy/faster_rcnn_se_r50_toy-coco.py \
        work_dirs/toy_se/epoch_6.pth --num-images 50

As mmdet's ``tools/analysis_tools/benchmark.py`` (``mmdet.utils.benchmark.InferenceBenchmark``),
whose loop is CUDA-only: the model (eval mode, SyncBN as BN, the checkpoint's weights or random
ones) runs ``test_step`` on one image at a time, which includes the data preprocessor and the
post-processing (NMS, resizing the maps back); loading and augmenting images is not timed.
Images come from the config's test dataloader, or are a random image at ``--shape``. The
first ``--warmup`` images are not timed.

Peak memory: on a GPU, ``torch.cuda.max_memory_allocated`` over the run (reset before it); on
the CPU, the process's peak resident memory (``VmHWM``), reset before the run through
``/proc/self/clear_refs`` so that building the model does not count (where that file cannot be
written, the peak since the process started, said so).

Detectors with random weights: how many boxes reach NMS and the RoI head depends on the
weights, so speeds of untrained detectors are indicative only; pass a checkpoint for numbers
that mean something. On a shared CPU, set ``OMP_NUM_THREADS`` and repeat (``--repeat``): the
tool prints the load average next to the result.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
from mmengine.config import DictAction
from mmengine.utils import ProgressBar

import mmattn  # noqa: F401  (registry scope; safe loading of mmengine checkpoints)
from mmattn.utils.memory import proc_status_bytes, reset_peak_rss
from mmattn.utils import DatasetNotFoundError, silence_pinned_warnings
from mmattn.utils.complexity import (ConfigError, build_model, dataloader_batches, load_config,
                                     parse_shape, random_batch)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Inference speed and peak memory of an mmdet or mmseg config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file (default: random weights)')
    parser.add_argument('--num-images', type=int, default=20, help='timed images (default 20)')
    parser.add_argument('--warmup', type=int, default=3,
                        help='images run before timing starts (default 3)')
    parser.add_argument('--repeat', type=int, default=1, help='timed runs (default 1)')
    parser.add_argument(
        '--shape', type=int, nargs='+', metavar='SIZE',
        help='run on a random image of H W (or S x S) pixels instead of the test dataloader')
    parser.add_argument('--device', default='auto',
                        help='auto (a GPU if there is one), cpu, cuda, cuda:1, ...')
    parser.add_argument('--fuse-conv-bn', action='store_true',
                        help='fold BN layers into the preceding convs (mmcv.cnn.fuse_conv_bn)')
    parser.add_argument('--out', help='also write the result to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value')
    return parser.parse_args(argv)


def _fail(msg):
    print(f'benchmark.py: error: {msg}', file=sys.stderr)
    sys.exit(2)


# -- peak memory ----------------------------------------------------------------------------
class PeakMemory:
    """Peak memory of the code run between :meth:`reset` and :meth:`peak`."""

    def __init__(self, device: torch.device):
        self.device = device
        self.note = ''

    def reset(self):
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.before = torch.cuda.memory_allocated(self.device)
            return
        self.before = proc_status_bytes('VmRSS')
        refused = reset_peak_rss()
        if refused:
            self.note = f'peak since the process started ({refused})'

    def peak(self) -> dict:
        if self.device.type == 'cuda':
            return dict(kind='torch.cuda.max_memory_allocated',
                        peak=torch.cuda.max_memory_allocated(self.device), before=self.before)
        return dict(kind='peak resident memory (VmHWM)', peak=proc_status_bytes('VmHWM'), before=self.before,
                    note=self.note)


# -- the run ----------------------------------------------------------------------------------
def _device(name: str) -> torch.device:
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(name)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ConfigError(f'--device {name}: this torch sees no GPU '
                          f'(torch {torch.__version__}); use --device cpu')
    return device


def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _batches(cfg, scope, args, total):
    """``total`` single-image batches: the random image again and again, or the test set
    (cycled when it has fewer images)."""
    if args.shape is not None:
        batch = random_batch(scope, parse_shape(args.shape))
        for _ in range(total):
            yield batch
        return
    done = 0
    while done < total:
        before = done
        for batch in dataloader_batches(cfg, scope, total - done):
            yield batch
            done += 1
        if done == before:
            raise ConfigError(f'{cfg.filename}: the test dataloader gave no images')


def run(args) -> dict:
    """The tool's work, returning what it prints (tests call this)."""
    for flag in ('num_images', 'repeat'):
        if getattr(args, flag) < 1:
            raise ConfigError(f'--{flag.replace("_", "-")} must be at least 1, '
                              f'got {getattr(args, flag)}')
    if args.warmup < 0:
        raise ConfigError(f'--warmup must be 0 or more, got {args.warmup}')
    if args.checkpoint is not None and not os.path.isfile(args.checkpoint):
        raise ConfigError(f'no checkpoint at {args.checkpoint!r}')
    cfg, scope = load_config(args.config, args.cfg_options)
    device = _device(args.device)
    model = build_model(cfg, scope, device)
    if args.checkpoint:
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, args.checkpoint, map_location='cpu', logger='silent')
    if args.fuse_conv_bn:
        from mmcv.cnn import fuse_conv_bn
        model = fuse_conv_bn(model)

    per_run = args.warmup + args.num_images
    try:
        batches = _batches(cfg, scope, args, per_run * args.repeat)
        memory = PeakMemory(device)
        memory.reset()
        runs = []
        for r in range(args.repeat):
            times = []
            print(f'run {r + 1}/{args.repeat}: {args.warmup} warm-up + {args.num_images} timed '
                  'images', flush=True)
            bar = ProgressBar(args.num_images, file=sys.stdout)  # the current stdout
            for i in range(per_run):
                batch = next(batches)
                _sync(device)
                start = time.perf_counter()
                with torch.no_grad():
                    model.test_step(batch)
                _sync(device)
                if i >= args.warmup:
                    times.append(time.perf_counter() - start)
                    bar.update()
            print(flush=True)
            runs.append(dict(images_per_s=len(times) / sum(times),
                             ms_median=1000 * statistics.median(times),
                             ms_min=1000 * min(times)))
    except DatasetNotFoundError as e:
        raise ConfigError(f'{e}\nOr pass --shape H W to run on a random image.')
    mem = memory.peak()
    load = os.getloadavg() if hasattr(os, 'getloadavg') else None
    return dict(config=args.config, checkpoint=args.checkpoint, scope=scope,
                device=str(device) + (f' ({torch.cuda.get_device_name(device)})'
                                      if device.type == 'cuda' else ''),
                threads=torch.get_num_threads(), source=(
                    'random {}x{} image'.format(*parse_shape(args.shape)) if args.shape
                    else 'test dataloader'),
                runs=runs, memory=mem, load_average=load)


def report(result: dict) -> str:
    mib = 1024**2
    lines = ['=' * 30,
             f'config: {result["config"]} ({result["scope"]}), weights: '
             f'{result["checkpoint"] or "random (no checkpoint)"}',
             f'device: {result["device"]}, torch threads: {result["threads"]}, images: '
             f'{result["source"]}']
    for i, r in enumerate(result['runs']):
        lines.append(f'run {i + 1}: {r["images_per_s"]:.2f} images/s '
                     f'(per image: median {r["ms_median"]:.1f} ms, min {r["ms_min"]:.1f} ms)')
    if len(result['runs']) > 1:
        speeds = [r['images_per_s'] for r in result['runs']]
        lines.append(f'images/s over runs: min {min(speeds):.2f}, median '
                     f'{statistics.median(speeds):.2f}, max {max(speeds):.2f}')
    mem = result['memory']
    lines.append(f'peak memory: {mem["peak"] / mib:.0f} MiB ({mem["kind"]}; '
                 f'{mem["before"] / mib:.0f} MiB before inference)'
                 + (f' [{mem["note"]}]' if mem.get('note') else ''))
    if result['load_average']:
        lines.append('load average (1, 5, 15 min): '
                     + ', '.join(f'{x:.2f}' for x in result['load_average']))
    lines.append('=' * 30)
    return '\n'.join(lines)


def main(argv=None):
    silence_pinned_warnings()  # the pinned stack's deprecation notices (mmattn/utils/noise.py)
    args = parse_args(argv)
    try:
        result = run(args)
    except ConfigError as e:
        _fail(str(e))
    print(report(result))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    main()
