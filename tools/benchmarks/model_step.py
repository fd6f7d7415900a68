"""Training-step time and peak memory of a whole mmdet or mmseg model on synthetic data.

Builds the model of any config (in the registry scope of its ``default_scope``: ``mmdet`` or
``mmseg``; ``mmdet::``/``mmseg::`` config names work too), gives it synthetic inputs (mmdet's
``demo_mm_inputs``: random images with 1-9 random boxes each; for mmseg random images with a
random ``gt_sem_seg`` of the head's classes) and times what a training iteration runs: the
data preprocessor, forward, losses, backward and the optimizer step (``model.train_step`` with
the config's ``optim_wrapper``), in training mode, the same batch every step. Printed: the
median and minimum of ``--steps`` steps after ``--warmup`` steps, and the peak memory of the
timed steps: on a GPU ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``
(weights, gradients, optimizer state and activations), on the CPU the growth of the process's
peak resident memory (:mod:`mmattn.utils.memory`).

- ``--plain``: after timing the model as built, the same model is timed again with mmattn's
  CPU fast paths switched off (``mmattn.models.layers.fast_paths(False)``: every attention
  module runs its plain formula), after checking that the two compute the same, in float64 on
  the same batch and random state: "ours against the plain formula inside the real model" in
  one command. On a GPU the switch changes nothing (the fast paths are the CPU's).
- The attention modules' parameters are randomised (seeded) before anything runs: their
  zero-initialised gammas and BNs would make them identities, and the comparison would
  prove nothing. Nothing else of the model is initialised (no ``init_weights``, so no
  checkpoint is downloaded); times do not depend on the values.
- The learning rate is set to 0 unless ``--keep-lr``: the optimizer does all its work, but
  every timed step sees the same weights (a randomly initialised detector trained at the
  config's rate changes its proposals, and so its step time, from step to step).
- ``--amp fp16|bf16`` on a GPU uses mmengine's ``AmpOptimWrapper`` of that dtype with dynamic
  loss scaling (what ``tools/train.py --amp`` does); on the CPU, where that wrapper refuses to
  run, the step runs under ``torch.autocast('cpu')`` without loss scaling.
- SyncBN layers become BN (``revert_sync_batchnorm``): one process has nothing to sync with.

Usage::

    python tools/benchmarks/model_step.py configs/faster_rcnn_se_r50_coco.py --device cuda \\
        --shape 800 1344 --batch 2 --plain --cfg-options model.backbone.frozen_stages=-1
    python tools/benchmarks/model_step.py configs/toy/danet_r18-d8_toy-cityscapes.py \\
        --shape 64 128 --steps 3 --plain
"""
import argparse
import contextlib
import copy
import json
import os
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
for _p in (ROOT, HERE):
    if _p not in sys.path:
        sys.path.insert(0, _p)
from bench_utils import (add_device_args, amp_dtype, attention_modules,  # noqa: E402
                         autocast, check_device, env_line, randomize, rel_diff, timed)

SCOPES = ('mmdet', 'mmseg')
# relative difference, in float64, between ours and the plain formula above which the check
# fails. float32 is no test here: a randomly initialised network amplifies rounding (a toy
# ResNet-50 with BN on batch statistics turns a 1e-7 change of its input into 4e-4 of its
# features) and a detector's proposal choices turn that into different losses.
F64_TOLERANCE = 1e-8


# -- config and model -------------------------------------------------------------------------
def load_config(path, cfg_options=None):
    """The config at ``path`` (or ``mmdet::``/``mmseg::`` name) with ``--cfg-options`` merged."""
    from mmengine.config import Config
    if '::' in path and not os.path.exists(path):
        # a package config: inherit it from a one-line file, so that mmengine resolves it
        with tempfile.NamedTemporaryFile('w', suffix='.py', delete=False) as f:
            f.write(f'_base_ = {path!r}\n')
        try:
            cfg = Config.fromfile(f.name)
        finally:
            os.unlink(f.name)
    else:
        if not os.path.exists(path):
            raise SystemExit(f'model_step: no config at {path!r}')
        cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def config_scope(cfg):
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        raise SystemExit(f'model_step: the config\'s default_scope must be one of {SCOPES}, '
                         f'got {scope!r}')
    return scope


def build_model(cfg, device='cpu', seed=0):
    """The config's model on ``device`` in training mode, SyncBN reverted to BN, its attention
    modules' parameters randomised (seed + their index)."""
    import importlib

    import torch
    from mmengine.model import revert_sync_batchnorm
    from mmengine.utils import import_modules_from_strings
    scope = config_scope(cfg)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg['custom_imports'])
    import mmattn  # noqa: F401  (registers the mmattn scope)
    importlib.import_module(f'{scope}.utils').register_all_modules(init_default_scope=True)
    registry = importlib.import_module(f'{scope}.registry').MODELS
    torch.manual_seed(seed)
    model = revert_sync_batchnorm(registry.build(cfg.model))
    for i, (path, _) in enumerate(attention_modules(model)):
        randomize(model.get_submodule(path), seed=seed + i)
    return model.to(device).train()


def _num_classes(cfg, *keys, default):
    node = cfg.model
    for k in keys:
        node = node.get(k) if hasattr(node, 'get') else None
        if node is None:
            return default
    return node if isinstance(node, int) else default


def synthetic_batch(cfg, batch, shape, seed=0):
    """A collated batch ``{'inputs': [...], 'data_samples': [...]}`` on the CPU, as a
    dataloader gives it: uint8 images of ``shape`` (H, W) with ground truth."""
    import numpy as np
    import torch
    h, w = shape
    if config_scope(cfg) == 'mmdet':
        from mmdet.testing import demo_mm_inputs
        classes = _num_classes(cfg, 'roi_head', 'bbox_head', 'num_classes', default=10)
        return demo_mm_inputs(batch_size=batch, image_shapes=(3, h, w),
                              num_classes=min(classes, 10))
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    classes = _num_classes(cfg, 'decode_head', 'num_classes', default=19)
    rng = np.random.RandomState(seed)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.from_numpy(rng.randint(0, 255, (3, h, w), dtype=np.uint8)))
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                             pad_shape=(h, w)))
        sample.gt_sem_seg = PixelData(data=torch.from_numpy(
            rng.randint(0, classes, (1, h, w)).astype(np.int64)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def build_optim_wrapper(model, cfg, device, amp, keep_lr=False):
    """The config's optim wrapper; learning rate 0 unless ``keep_lr``; ``AmpOptimWrapper`` of
    the ``--amp`` dtype on CUDA."""
    from mmengine.optim import build_optim_wrapper as build
    ow = copy.deepcopy(cfg.get('optim_wrapper')
                       or dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)))
    if not keep_lr:
        ow['optimizer']['lr'] = 0.0
    if amp is not None and device == 'cuda':
        ow['type'] = 'AmpOptimWrapper'
        ow['dtype'] = str(amp_dtype(amp)).replace('torch.', '')
        ow['loss_scale'] = 'dynamic'
    elif ow.get('type') == 'AmpOptimWrapper':
        ow['type'] = 'OptimWrapper'  # the config's own AMP: only where --amp asks for it
        for k in ('dtype', 'loss_scale'):
            ow.pop(k, None)
    wrapper = build(model, ow)
    if amp is not None and device != 'cuda':
        # AmpOptimWrapper refuses the CPU: autocast the same part it would (preprocessor and
        # forward; the backward and the update outside), without loss scaling
        inner = wrapper.optim_context

        @contextlib.contextmanager
        def optim_context(model):
            with inner(model), autocast(device, amp):
                yield

        wrapper.optim_context = optim_context
    return wrapper


# -- measurements -----------------------------------------------------------------------------
def float64_outputs(model, data, seed=0):
    """What the check of ``--plain`` compares, computed in float64 in training mode without a
    backward: ``('losses', {term: value})`` where the whole loss runs in float64, else
    ``('features (extract_feat; ...)', [tensors])`` with the reason where an op refuses
    float64 (mmcv's compiled NMS takes float32 only, so a detector's loss cannot run on the
    CPU; its attention modules are in the backbone and neck)."""
    import torch
    torch.manual_seed(seed)
    model.double()  # in place: the same Parameter objects; .float() restores them exactly
    try:
        with torch.no_grad():
            d = model.data_preprocessor(copy.deepcopy(data), True)
            x = d['inputs'].double()
            try:
                total, log_vars = model.parse_losses(
                    model(x, d['data_samples'], mode='loss'))
            except Exception as e:  # noqa: B902 - any op that refuses float64 (mmcv's NMS)
                why = f'{type(e).__name__}: {e}'.splitlines()[0]
                return f'features (extract_feat; the loss fails in float64: {why})', [
                    f.detach() for f in model.extract_feat(x)]
            terms = {k: v.detach() for k, v in log_vars.items()}
            terms['loss'] = total.detach()
            return 'losses', terms
    finally:
        model.float()


def compare_outputs(a, b):
    """Largest relative difference between two ``float64_outputs`` results (b against a)."""
    (kind_a, out_a), (kind_b, out_b) = a, b
    if kind_a != kind_b:
        raise RuntimeError(f'model_step: ours gave {kind_a}, the plain formula {kind_b}')
    if isinstance(out_a, dict):
        if out_a.keys() != out_b.keys():
            raise RuntimeError(f'model_step: loss terms differ: {sorted(out_a)} vs '
                               f'{sorted(out_b)}')
        pairs = [(out_b[k], out_a[k]) for k in out_a]
    else:
        pairs = list(zip(out_b, out_a))
    return max(rel_diff(x, y) for x, y in pairs)


def losses_of(model, data, device, amp=None, seed=0):
    """The loss terms (floats) of one forward in training mode, without a backward."""
    import torch
    torch.manual_seed(seed)  # the samplers' draws (mmdet's RandomSampler) and dropout
    with torch.no_grad(), autocast(device, amp):
        d = model.data_preprocessor(copy.deepcopy(data), True)
        losses = model(**d, mode='loss')
        total, log_vars = model.parse_losses(losses)
    out = {k: float(v) for k, v in log_vars.items()}
    out['loss'] = float(total)
    return out


def time_steps(model, data, optim_wrapper, args, fast=True):
    """Warm-up, then the timed steps, with mmattn's CPU fast paths on or off (``fast``): dict
    of times (s), peak bytes and the last losses."""
    import torch

    from mmattn.models.layers import fast_paths
    from mmattn.utils.memory import peak_bytes, reset_peak
    device = args.device

    def step(batch):  # --amp: the optim wrapper's optim_context autocasts the forward
        with fast_paths(fast):
            return model.train_step(batch, optim_wrapper)

    torch.manual_seed(0)
    for _ in range(args.warmup):
        step(copy.deepcopy(data))
    reset_peak(device)
    base = 0 if device == 'cuda' else peak_bytes(device)
    times, log_vars = [], None
    for _ in range(args.steps):
        batch = copy.deepcopy(data)  # a fresh batch, as a dataloader gives, outside the timer
        elapsed, log_vars = timed(device, step, batch)
        times.append(elapsed)
    peak = peak_bytes(device) - base
    return dict(times=times, peak_bytes=peak,
                losses={k: float(v.detach()) for k, v in (log_vars or {}).items()})


def _row(name, res):
    ts = [t * 1e3 for t in res['times']]
    return dict(model=name, median_ms=statistics.median(ts), min_ms=min(ts), n=len(ts),
                peak_mib=res['peak_bytes'] / 2**20, losses=res['losses'])


def format_table(rows, meta):
    mem = ('peak MiB (CUDA max allocated)' if meta['device'] == 'cuda'
           else 'peak RSS growth MiB')
    lines = [meta['env'], '',
             f'{meta["config"]}: training step (preprocess + forward + loss + backward + '
             f'optimizer step), batch {meta["batch"]} x {meta["shape"][0]}x{meta["shape"][1]}, '
             f'{meta["precision"]}; median / min of {meta["steps"]} steps after '
             f'{meta["warmup"]} warm-up', '',
             f'| model | step ms (median / min) | {mem} | step vs ours |', '|---|---|---|---|']
    ours = rows[0]['median_ms']
    for r in rows:
        ratio = '' if r is rows[0] else f'{r["median_ms"] / ours:.2f}x'
        lines.append(f'| {r["model"]} | {r["median_ms"]:.4g} / {r["min_ms"]:.4g} | '
                     f'{r["peak_mib"]:.0f} | {ratio} |')
    return '\n'.join(lines)


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='config file, or an mmdet::/mmseg:: config name')
    add_device_args(parser)
    parser.add_argument('--plain', action='store_true',
                        help="also time the model with mmattn's CPU fast paths off (every "
                        'module runs its plain formula), after checking both compute the same')
    parser.add_argument('--batch', type=int, default=2, help='images per step (default 2)')
    parser.add_argument('--shape', type=int, nargs=2, default=None, metavar=('H', 'W'),
                        help='image size (default: 800 1344 for mmdet, 512 1024 for mmseg)')
    parser.add_argument('--steps', type=int, default=10, help='timed steps (default 10)')
    parser.add_argument('--warmup', type=int, default=3, help='untimed steps first')
    parser.add_argument('--keep-lr', action='store_true',
                        help="the config's learning rate instead of 0")
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='override config keys, key=value as in tools/train.py')
    parser.add_argument('--json', default=None, help='also write the results here')
    args = parser.parse_args(argv)
    for what in ('batch', 'steps'):
        if getattr(args, what) < 1:
            parser.error(f'model_step: --{what} must be at least 1, got {getattr(args, what)}')
    if args.warmup < 0:
        parser.error(f'model_step: --warmup must be at least 0, got {args.warmup}')
    return args


def main(argv=None):
    from mmattn.utils import silence_pinned_warnings
    silence_pinned_warnings()  # the pinned stack's deprecation notices (mmattn/utils/noise.py)
    args = parse_args(argv)
    import torch
    check_device(args.device, 'model_step')
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.cfg_options)
    scope = config_scope(cfg)
    if args.shape is None:
        args.shape = [800, 1344] if scope == 'mmdet' else [512, 1024]
    if scope == 'mmdet' and args.amp and args.device == 'cpu':
        raise SystemExit(f'model_step: --amp {args.amp} on the CPU cannot train an mmdet model: '
                         'mmcv\'s CPU NMS takes float32 boxes and scores only (expected '
                         'float32, autocast gives ' + str(amp_dtype(args.amp)) + '); use '
                         '--device cuda or no --amp')
    meta = dict(config=args.config, device=args.device, batch=args.batch, shape=args.shape,
                steps=args.steps, warmup=args.warmup, amp=args.amp,
                precision='float32' if args.amp is None else f'AMP {amp_dtype(args.amp)}',
                env=env_line(args.device, args.amp, args.threads), argv=sys.argv[1:])
    model = build_model(cfg, args.device)
    data = synthetic_batch(cfg, args.batch, args.shape)
    found = attention_modules(model)
    names = sorted({n for _, n in found})
    print(f'model_step: {len(found)} mmattn attention module(s) in the model'
          + (f': {", ".join(names)}' if names else ''), file=sys.stderr, flush=True)

    ow = build_optim_wrapper(model, cfg, args.device, args.amp, args.keep_lr)
    rows = [_row('ours (as configured)', time_steps(model, data, ow, args))]
    status, check = 0, None
    if args.plain:
        from mmattn.models.layers import fast_paths
        ours_64 = float64_outputs(model, data)
        ours_losses = losses_of(model, data, args.device)
        with fast_paths(False):
            plain_64 = float64_outputs(model, data)
            plain_losses = losses_of(model, data, args.device)
        worst = compare_outputs(ours_64, plain_64)
        counts = {}
        for _, name in found:
            counts[name] = counts.get(name, 0) + 1
        check = dict(modules=counts, ours=ours_losses, plain=plain_losses,
                     compared=ours_64[0], max_rel_diff=worst)
        del ours_64, plain_64
        if worst > F64_TOLERANCE:
            status = 1
        rows.append(_row('plain formula (fast paths off)',
                         time_steps(model, data, ow, args, fast=False)))
    print(format_table(rows, meta))
    if check is not None:
        print()
        print('mmattn modules in the model: ' + (', '.join(
            f'{n} x{c}' for n, c in sorted(check['modules'].items())) or 'none'))
        flag = ' **MISMATCH**' if check['max_rel_diff'] > F64_TOLERANCE else ''
        print(f'ours against the plain formula, same batch and random state, float64 '
              f'{check["compared"]}: largest relative difference {check["max_rel_diff"]:.1e} '
              f'(tolerance {F64_TOLERANCE:.0e}){flag}')
        print(f'loss in float32, ours / plain: {check["ours"]["loss"]:.6g} / '
              f'{check["plain"]["loss"]:.6g} (rounding, amplified by the random network and by '
              f'a detector\'s proposal choices, can make these differ by 1e-3)')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(meta=meta, rows=rows, check=check), f, indent=1)
    return status


if __name__ == '__main__':
    sys.exit(main())
