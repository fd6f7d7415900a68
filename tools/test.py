"""Test (and evaluate) a detector, a segmentor or a classifier (flags as mmdet's, mmseg's and
mmpretrain's test.py).

    python tools/test.py CONFIG CHECKPOINT [--out results.pkl] [--show-dir vis]

Prints the metrics (box mAP for mmdet's COCO metric, mIoU for mmseg's IoU metric, top-1 and
top-5 for mmpretrain's accuracy).
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import DictAction

import mmattn  # noqa: F401  (registry scope; safe loading of mmengine checkpoints)
from mmattn.utils import (DatasetNotFoundError, LibraryUnavailableError,
                          adapt_cfg_for_cpu_distributed, check_dataset_paths,
                          check_library_available, init_cpu_distributed, silence_pinned_warnings)
from mmattn.utils.dist import close_distributed
from mmattn.utils.checkpoint import (CheckpointFileError, CheckpointMismatchError,
                                     check_checkpoint_fits, read_checkpoint)
from mmattn.utils.preflight import (ModelBuildError, build_model, guarded_runner,
                                    load_run_config)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save the evaluation metrics')
    parser.add_argument(
        '--out', type=str,
        help='mmdet: dump predictions to this .pkl file; mmseg: save the predicted '
        'segmentation maps in this directory')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='directory where painted images will be saved '
                        '(under work_dir/timestamp/ for mmdet)')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--tta', action='store_true',
        help='test-time augmentation, as mmdet\'s and mmseg\'s test.py: the model is wrapped '
        'in the config\'s tta_model and the test data go through its tta_pipeline')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value')
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


SCOPES = ('mmdet', 'mmseg', 'mmpretrain')


def _scope(cfg):
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        _fail(f'{cfg.filename}: default_scope is {scope!r}; tools/test.py serves mmdet, mmseg '
              'and mmpretrain configs (inherit one of their configs through _base_)')
    return scope


def trigger_visualization(cfg, args, scope):
    hooks = cfg.default_hooks
    if 'visualization' not in hooks:
        _fail('--show/--show-dir need a `visualization` hook in default_hooks')
    hook = hooks['visualization']
    hook['draw'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        if scope == 'mmdet':
            hook['test_out_dir'] = args.show_dir
        else:
            cfg.visualizer['save_dir'] = args.show_dir


def use_tta(cfg, scope):
    """Wrap the model in ``cfg.tta_model`` and test on ``cfg.tta_pipeline`` (as mmseg's
    test.py; mmdet's falls back to a default flip TTA, which we do not guess for a config)."""
    missing = [k for k in ('tta_model', 'tta_pipeline') if not cfg.get(k)]
    if missing:
        example = ('mmdet::_base_/datasets/coco_detection.py has none; see e.g. '
                   "mmdet's configs/rtmdet/rtmdet_tta.py: tta_model = dict(type='DetTTAModel', "
                   "tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.6), max_per_img=100)) and "
                   "a tta_pipeline ending in dict(type='TestTimeAug', transforms=[...])"
                   if scope == 'mmdet' else
                   "mmseg's _base_/default_runtime.py sets tta_model = dict(type='SegTTAModel') "
                   "and its dataset bases (e.g. _base_/datasets/cityscapes.py) a tta_pipeline")
        _fail(f'--tta: {cfg.filename} has no {" and no ".join(missing)}. Add '
              f'{"them" if len(missing) > 1 else "it"} to the config ({example}).')
    dataset = cfg.test_dataloader.dataset
    while 'dataset' in dataset:  # dataset wrappers
        dataset = dataset['dataset']
    dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


def build_cfg(args):
    cfg = load_run_config(args.config, args.launcher, cfg_options=args.cfg_options,
                          data_root=args.data_root, work_dir=args.work_dir)
    scope = _scope(cfg)
    if args.out is not None and scope == 'mmpretrain':
        _fail('--out: tools/test.py dumps detection results and segmentation maps; for a '
              'classifier the metrics are printed and written to the work directory')
    if (args.show or args.show_dir) and scope == 'mmpretrain':
        _fail('--show/--show-dir: tools/test.py draws detections and segmentation maps, not '
              'classifications (mmpretrain\'s own tools/test.py does)')
    if not osp.isfile(args.checkpoint):
        _fail(f'no checkpoint at {args.checkpoint!r}')
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        trigger_visualization(cfg, args, scope)
    if args.tta:
        use_tta(cfg, scope)
    if args.out is not None and scope == 'mmseg':
        evaluators = cfg.test_evaluator
        for evaluator in evaluators if isinstance(evaluators, (list, tuple)) else [evaluators]:
            evaluator['output_dir'] = args.out
            evaluator['keep_results'] = True
    return cfg, scope


def check_before_writing(cfg, config):
    """The data, the model (it builds) and the checkpoint (it reads and fits the model),
    before mmengine's Runner writes the work directory; exits with one line naming the
    problem."""
    try:
        check_library_available(cfg, config)
        check_dataset_paths(cfg, loaders=('test_dataloader', ))
        checkpoint = read_checkpoint(cfg.load_from)
        model = build_model(cfg)
        check_checkpoint_fits(model, checkpoint, cfg.load_from)
    except ModelBuildError as e:
        _fail(f'{config}: the model does not build: {e}')
    except (DatasetNotFoundError, LibraryUnavailableError, CheckpointFileError,
            CheckpointMismatchError) as e:
        _fail(str(e))


def main(argv=None):
    silence_pinned_warnings()  # the pinned stack's deprecation notices (mmattn/utils/noise.py)
    args = parse_args(argv)
    cfg, scope = build_cfg(args)
    check_before_writing(cfg, args.config)
    if args.out is not None and scope == 'mmdet' and not args.out.endswith(('.pkl',
                                                                           '.pickle')):
        _fail(f'--out must name a .pkl file for detection, got {args.out!r}')
    adapt_cfg_for_cpu_distributed(cfg)
    init_cpu_distributed(args.launcher)

    # a run that fails before its first iteration ends leaves nothing behind
    with guarded_runner(cfg) as runner:
        if args.out is not None and scope == 'mmdet':
            from mmdet.evaluation import DumpDetResults
            runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
        metrics = runner.test()
    if runner.rank == 0:
        print('\nmetrics:')
        for k, v in metrics.items():
            print(f'  {k}: {v}')
    close_distributed()
    return metrics


if __name__ == '__main__':
    main()
