"""Hooks around validations for the tests of evaluation and resuming, loaded into a run with
``custom_imports=dict(imports=['tests.test_tools.eval_probe'])``.

- ``EvalProbe`` records what each process predicted in a validation or a test: it writes
  ``{val,test}_rank<r>.json`` into the work directory, per image the sum and the absolute sum
  of its segmentation logits (float64), and the metrics.
- ``ValCheckpointHook`` saves a checkpoint at the end of every validation
  (``val_iter_<n>.pth``), as ``CheckpointHook(save_best=...)`` saves the best one there.
"""
import json
import os.path as osp

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class EvalProbe(Hook):

    def __init__(self):
        self.seen = {}

    def _record(self, outputs):
        for sample in outputs:
            logits = sample.seg_logits.data.double()
            self.seen[osp.basename(sample.img_path)] = [logits.sum().item(),
                                                        logits.abs().sum().item()]

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._record(outputs)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._record(outputs)

    def _dump(self, runner, mode, metrics):
        path = osp.join(runner.work_dir, f'{mode}_rank{get_rank()}.json')
        with open(path, 'w') as f:
            json.dump(dict(seen=self.seen, metrics=metrics), f)
        self.seen = {}

    def after_val_epoch(self, runner, metrics=None):
        self._dump(runner, 'val', metrics)

    def after_test_epoch(self, runner, metrics=None):
        self._dump(runner, 'test', metrics)


@HOOKS.register_module()
class ValCheckpointHook(Hook):
    priority = 'VERY_LOW'  # with CheckpointHook

    def after_val_epoch(self, runner, metrics=None):
        runner.save_checkpoint(runner.work_dir, f'val_iter_{runner.iter}.pth', by_epoch=False)
