"""Train a detector, a segmentor or a classifier from an mmdet, mmseg or mmpretrain config
(flags as mmdet's train.py).

    python tools/train.py configs/faster_rcnn_se_r50_coco.py
    tools/dist_train.sh configs/faster_rcnn_se_r50_coco.py 8
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import DictAction

import mmattn  # noqa: F401  (registry scope; safe loading of mmengine checkpoints)
from mmattn.utils import (CheckpointNotFoundError, DatasetNotFoundError,
                          LibraryUnavailableError, PretrainedUnavailableError,
                          adapt_cfg_for_cpu_distributed, check_dataset_paths,
                          check_library_available, check_pretrained_available,
                          check_pretrained_checkpoints, check_remote_checkpoints,
                          init_cpu_distributed, silence_pinned_warnings)
from mmattn.utils.checkpoint import (CheckpointFileError, CheckpointMismatchError,
                                     check_checkpoint_fits, check_resumable, read_checkpoint)
from mmattn.utils.dist import close_distributed
from mmattn.utils.preflight import (ModelBuildError, build_model, guarded_runner,
                                    load_run_config)
from mmattn.utils.resume import latest_checkpoint, nothing_left_to_train

CHECK_HOOK = 'mmattn.AttentionCheckHook'
RESUME_HOOK = 'mmattn.ResumeStateHook'
BUFFERS_HOOK = 'mmattn.BroadcastBuffersHook'
# mmengine's loops -> mmattn's, which resume where the checkpoint was written (same runs else)
RESUMABLE_LOOPS = {'EpochBasedTrainLoop': 'mmattn.EpochBasedTrainLoop',
                   'IterBasedTrainLoop': 'mmattn.IterBasedTrainLoop'}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector, a segmentor or a classifier')
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
    cfg = load_run_config(args.config, args.launcher, cfg_options=args.cfg_options,
                          data_root=args.data_root, work_dir=args.work_dir)

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
        # mmengine would read work_dir/last_checkpoint, which a run killed while saving
        # leaves empty or naming a file it did not finish: name the checkpoint here
        found, note = latest_checkpoint(cfg.work_dir)
        if note is not None and found is None:
            _fail(note)
        if note is not None:
            print(f'mmattn: {note}')
        cfg.resume = True
        cfg.load_from = found
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
    # validation in a distributed run scores the model the checkpoint holds
    add_hook(cfg, BUFFERS_HOOK)
    make_resumable(cfg)
    return cfg


def add_hook(cfg, hook_type):
    """Add one of mmattn's hooks to ``custom_hooks`` unless the config has it already:
    AttentionCheckHook (warns about attention modules that will not learn),
    BroadcastBuffersHook (every process validates the main process's model) and
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


def check_before_writing(cfg, config):
    """Everything that can be checked before mmengine's Runner writes the work directory:
    the data, the pretrained weights (local files, and every URL scheme mmengine fetches),
    the model (it builds), and the checkpoint --resume or load_from starts from (it reads,
    and a resumed one fits the model). Returns a message when --resume has nothing left to
    train; exits with one line naming the problem."""
    resume_from = cfg.load_from if cfg.get('resume') else None
    checkpoint = None
    try:
        check_library_available(cfg, config)
        if resume_from:
            checkpoint = read_checkpoint(resume_from)
            meta = check_resumable(checkpoint, resume_from)
            finished = nothing_left_to_train(cfg, resume_from, meta)
            if finished:
                return finished
        # mmengine loads init_cfg checkpoints even before load_from / --resume replace them
        check_pretrained_checkpoints(cfg)
        check_dataset_paths(cfg, loaders=('train_dataloader', 'val_dataloader'))
        # mmengine would only fail inside init_weights, after the work dir is written
        check_pretrained_available(cfg, config)
        check_remote_checkpoints(cfg, config)
        model = build_model(cfg)
        if resume_from:
            check_checkpoint_fits(model, checkpoint, resume_from)
        elif cfg.get('load_from') and '://' not in cfg.load_from:
            read_checkpoint(cfg.load_from)  # its keys may differ: fine-tuning loads a part
    except ModelBuildError as e:
        _fail(f'{config}: the model does not build: {e}')
    except (CheckpointNotFoundError, DatasetNotFoundError, LibraryUnavailableError,
            PretrainedUnavailableError, CheckpointFileError, CheckpointMismatchError) as e:
        _fail(str(e))
    return None


def main(argv=None):
    silence_pinned_warnings()  # the pinned stack's deprecation notices (mmattn/utils/noise.py)
    args = parse_args(argv)
    cfg = build_cfg(args)
    finished = check_before_writing(cfg, args.config)
    if finished:
        print(finished)
        return None
    adapt_cfg_for_cpu_distributed(cfg)
    init_cpu_distributed(args.launcher)

    # a run that fails before its first iteration ends leaves nothing behind
    with guarded_runner(cfg) as runner:
        runner.train()
    close_distributed()


if __name__ == '__main__':
    main()
