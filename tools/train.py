"""Train a detector or a segmentor from an mmdet or mmseg config (flags as mmdet's train.py).

    python tools/train.py configs/faster_rcnn_se_r50_coco.py
    tools/dist_train.sh configs/faster_rcnn_se_r50_coco.py 8
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmattn  # noqa: F401  (registry scope; safe loading of mmengine checkpoints)
from mmattn.utils import (CheckpointNotFoundError, DatasetNotFoundError,
                          PretrainedUnavailableError, adapt_cfg_for_cpu_distributed,
                          check_dataset_paths, check_pretrained_available,
                          check_pretrained_checkpoints, init_cpu_distributed,
                          silence_pinned_notices, silence_pinned_warnings)
from mmattn.utils.data_check import set_data_root
from mmattn.utils.resume import nothing_left_to_train

CHECK_HOOK = 'mmattn.AttentionCheckHook'
RESUME_HOOK = 'mmattn.ResumeStateHook'
# mmengine's loops -> mmattn's, which resume where the checkpoint was written (same runs else)
RESUMABLE_LOOPS = {'EpochBasedTrainLoop': 'mmattn.EpochBasedTrainLoop',
                   'IterBasedTrainLoop': 'mmattn.IterBasedTrainLoop'}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector or a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='enable automatic-mixed-precision training (GPU)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the actual batch size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or, with no path, from the latest checkpoint '
        'in the work directory')
    parser.add_argument(
        '--overwrite', action='store_true',
        help='start afresh in a work directory that already holds checkpoints '
        '(they are overwritten as the new run saves its own)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value (e.g. '
        'train_dataloader.batch_size=4)')
    parser.add_argument(
        '--data-root', metavar='DIR',
        help='where the data set is: sets the data_root of every dataloader\'s dataset and '
        'moves the evaluators\' annotation files along (--cfg-options data_root=... cannot: '
        'the config has already joined data_root into each dataset)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def _fail(msg):
    print(f'error: {msg}', file=sys.stderr)
    sys.exit(2)


def build_cfg(args):
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.data_root is not None:
        set_data_root(cfg, args.data_root)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        import torch
        if not torch.cuda.is_available():
            _fail('--amp needs a GPU: mmengine\'s AmpOptimWrapper supports CUDA, NPU, MLU '
                  'and MUSA devices only; drop --amp to train in float32 on the CPU.')
        if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            print('AMP training is already enabled in your config.')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        if 'auto_scale_lr' in cfg and 'enable' in cfg.auto_scale_lr \
                and 'base_batch_size' in cfg.auto_scale_lr:
            cfg.auto_scale_lr.enable = True
        else:
            _fail('--auto-scale-lr needs `auto_scale_lr = dict(enable=False, '
                  'base_batch_size=...)` in the config')

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            _fail(f'--resume: no checkpoint at {args.resume!r}')
        cfg.resume = True
        cfg.load_from = args.resume
    elif not args.overwrite and _has_checkpoints(cfg.work_dir):
        # A second run in the same work_dir would overwrite epoch_N.pth / iter_N.pth.
        _fail(f'{cfg.work_dir} already holds checkpoints of an earlier run. Pass --resume to '
              'continue it, --work-dir to train elsewhere, or --overwrite to start over '
              'in place.')
    add_hook(cfg, CHECK_HOOK)
    make_resumable(cfg)
    return cfg


def add_hook(cfg, hook_type):
    """Add one of mmattn's hooks to ``custom_hooks`` unless the config has it already:
    AttentionCheckHook (warns about attention modules that will not learn) and
    ResumeStateHook (what a resumed run needs to continue exactly)."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(str(h.get('type', '')).split('.')[-1] == hook_type.split('.')[-1]
               for h in hooks):
        hooks.append(dict(type=hook_type))
    cfg.custom_hooks = hooks


def make_resumable(cfg):
    """Let a resumed run continue where its checkpoint was written: mmattn's ResumeStateHook,
    and mmattn's versions of mmengine's two training loops (the same loops in a run that is
    not resumed). A config with another loop keeps it."""
    add_hook(cfg, RESUME_HOOK)
    train_cfg = cfg.get('train_cfg')
    if not train_cfg:
        return
    loop = train_cfg.get('type')
    if loop is None:  # mmengine picks its loop from by_epoch
        loop = 'EpochBasedTrainLoop' if train_cfg.pop('by_epoch', True) else \
            'IterBasedTrainLoop'
    name = loop.split('.', 1)[1] if isinstance(loop, str) and loop.startswith('mmengine.') \
        else loop
    train_cfg['type'] = RESUMABLE_LOOPS.get(name, loop)


def _has_checkpoints(work_dir):
    return osp.isdir(work_dir) and any(f.endswith('.pth') for f in os.listdir(work_dir))


def main(argv=None):
    silence_pinned_warnings()  # the pinned stack's deprecation notices (mmattn/utils/noise.py)
    args = parse_args(argv)
    cfg = build_cfg(args)
    if cfg.get('resume'):
        finished = nothing_left_to_train(cfg)
        if finished:
            print(finished)
            return None
    try:
        # mmengine loads init_cfg checkpoints even before load_from / --resume replace them
        check_pretrained_checkpoints(cfg)
        check_dataset_paths(cfg, loaders=('train_dataloader', 'val_dataloader'))
        # mmengine would only fail inside init_weights, after the work dir is written
        check_pretrained_available(cfg, args.config)
    except (CheckpointNotFoundError, DatasetNotFoundError, PretrainedUnavailableError) as e:
        _fail(str(e))
    adapt_cfg_for_cpu_distributed(cfg)
    init_cpu_distributed(args.launcher)

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    # mmengine's hooks log its own FileClient deprecation on every run; the user can't act on it
    silence_pinned_notices(runner.logger)
    runner.train()


if __name__ == '__main__':
    main()
