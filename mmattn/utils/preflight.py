"""What tools/train.py and tools/test.py do before and around a run: read the config as both
take it, and, so that a mistake leaves nothing behind, build the model before mmengine's Runner
writes its work directory, and remove what a run wrote when it fails before its first iteration
ends.

mmengine's Runner creates the work directory, a log folder and a copy of the config as it is
built, before it builds the model, and the first forward pass is where layers that do not fit
together (a head's ``in_channels`` that is not its input's width) fail.
"""
import os
import os.path as osp
import shutil
import sys
import traceback
from contextlib import contextmanager
from typing import Dict, Optional, Set

from mmengine.hooks import Hook

from .data_check import set_data_root
from .noise import silence_pinned_notices


def load_run_config(config: str, launcher: str, cfg_options: Optional[dict] = None,
                    data_root: Optional[str] = None, work_dir: Optional[str] = None):
    """The config a run of tools/train.py or tools/test.py starts from: ``config`` read with
    mmengine's ``Config.fromfile``, the launcher set, ``--cfg-options`` merged, ``--data-root``
    applied (:func:`~mmattn.utils.data_check.set_data_root`), and the work directory given,
    else the config's, else ``./work_dirs/<config name>`` (as mmdet's and mmseg's tools)."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if data_root is not None:
        set_data_root(cfg, data_root)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    return cfg


class ModelBuildError(RuntimeError):
    """The config's model does not build; the message is the builder's, in one paragraph."""


def build_model(cfg):
    """Build ``cfg.model`` as mmengine's Runner does (in the config's default scope, with the
    config's ``data_preprocessor`` when the model has none), without writing anything."""
    from mmengine.registry import MODELS, DefaultScope
    model_cfg = cfg.model.copy() if hasattr(cfg.model, 'copy') else cfg.model
    if cfg.get('data_preprocessor') is not None and isinstance(model_cfg, dict):
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    try:
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
            return MODELS.build(model_cfg)
    except Exception as err:  # noqa: BLE001 (any builder's error: KeyError, TypeError, ...)
        msg = err.args[0] if isinstance(err, KeyError) and err.args and isinstance(
            err.args[0], str) else str(err)
        raise ModelBuildError(f'{type(err).__name__}: {" ".join(msg.split())}') from err


def _tree(folder: str) -> Set[str]:
    """Every path under ``folder``, relative to it."""
    paths = set()
    for root, dirs, files in os.walk(folder):
        rel = osp.relpath(root, folder)
        for name in dirs + files:
            paths.add(osp.normpath(osp.join(rel, name)))
    return paths


class _Started(Hook):
    priority = 'LOWEST'

    def __init__(self, owner: 'EarlyFailureCleanup'):
        self.owner = owner

    def _done(self, *args, **kwargs) -> None:
        self.owner.started = True

    after_train_iter = after_val_iter = after_test_iter = _done


class EarlyFailureCleanup:
    """A context around building and running a Runner: if it fails before its first
    iteration ended (training, validation or test), remove every file and folder it created
    under ``work_dir`` (and ``work_dir`` itself, when the run created it), put back the files
    it overwrote (the copy of the config), print the error with what was removed, and exit
    with status 1. Nothing that was there before is removed; a run that got as far as one
    iteration keeps its logs.

    ``watch(runner)`` once the runner is built.
    """

    def __init__(self, work_dir: str, keep_files=()):
        self.work_dir = osp.abspath(work_dir)
        self.existed = osp.isdir(self.work_dir)
        self.before = _tree(self.work_dir) if self.existed else set()
        # files the runner overwrites as it is built (its copy of the config)
        self.saved: Dict[str, bytes] = {}
        for name in keep_files:
            path = osp.join(self.work_dir, name)
            if osp.isfile(path):
                with open(path, 'rb') as f:
                    self.saved[path] = f.read()
        self.started = False

    def watch(self, runner) -> None:
        runner.register_hook(_Started(self), priority='LOWEST')

    def __enter__(self) -> 'EarlyFailureCleanup':
        return self

    def __exit__(self, exc_type, exc, tb) -> Optional[bool]:
        if exc_type is None or self.started or not issubclass(exc_type, Exception):
            return None
        removed = self.clean()
        traceback.print_exception(exc_type, exc, tb)
        what = ', '.join(removed) if removed else 'nothing'
        print(f'error: the run failed before its first iteration ended ({exc_type.__name__}: '
              f'{" ".join(str(exc).split())[:300]}); removed what it wrote: {what}',
              file=sys.stderr)
        sys.exit(1)

    def clean(self):
        """Remove what appeared under ``work_dir`` since this object was made; put back the
        files it saved. Returns the removed paths, outermost only."""
        removed = []
        if not osp.isdir(self.work_dir):
            return removed
        if not self.existed:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            return [self.work_dir]
        new = sorted(_tree(self.work_dir) - self.before)
        for rel in new:
            if any(rel.startswith(r + os.sep) for r in removed):
                continue  # inside a folder already removed
            path = osp.join(self.work_dir, rel)
            if osp.isdir(path) and not osp.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            elif osp.lexists(path):
                try:
                    os.remove(path)
                except FileNotFoundError:  # another process of the run removed it
                    pass
            removed.append(rel)
        for path, data in self.saved.items():
            with open(path, 'wb') as f:
                f.write(data)
        return [osp.join(self.work_dir, r) for r in removed]


@contextmanager
def guarded_runner(cfg):
    """Build mmengine's Runner for ``cfg`` (a ``runner_type`` the config names, as mmdet's
    tools) and yield it inside :class:`EarlyFailureCleanup`: a run that fails before its
    first iteration ends leaves nothing behind. mmengine's hooks log its own FileClient
    deprecation on every run, which the user cannot act on: the runner's logger drops it."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    with EarlyFailureCleanup(cfg.work_dir, keep_files=[osp.basename(cfg.filename)]) as run:
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
        run.watch(runner)
        silence_pinned_notices(runner.logger)
        yield runner
