"""A hook that records what a training process saw, for the distributed and resume tests.

Loaded into a run with ``custom_imports=dict(imports=['tests.test_tools.probe_hooks'])``.
"""
import hashlib
import json
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


def tensor_digest(tensors):
    h = hashlib.sha1()
    for name, t in tensors:
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class Interrupted(RuntimeError):
    """Raised to stop a run as a crash or a killed job would."""


@HOOKS.register_module()
class ProbeHook(Hook):
    priority = 'LOWEST'  # after CheckpointHook has saved

    def __init__(self, interrupt_after_epoch=None):
        self.interrupt_after_epoch = interrupt_after_epoch
        self.record = dict(seen=[], start=None)

    def _model(self, runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_train(self, runner):
        model = self._model(runner)
        state = runner.optim_wrapper.optimizer.state_dict()['state']
        self.record['start'] = dict(
            iter=runner.iter, epoch=runner.epoch,
            params=tensor_digest(sorted(model.named_parameters())),
            state=tensor_digest(sorted(model.state_dict().items())),
            optim=tensor_digest([(f'{k}.{n}', v) for k in sorted(state)
                                 for n, v in sorted(state[k].items())
                                 if isinstance(v, torch.Tensor)]),
            optim_steps=len(state))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        for sample in data_batch['data_samples']:
            self.record['seen'].append(osp.basename(sample.metainfo['img_path']))

    def after_train_epoch(self, runner):
        # runner.epoch is still the 0-based index of the epoch that just ended
        if self.interrupt_after_epoch is not None \
                and runner.epoch + 1 >= self.interrupt_after_epoch:
            self._dump(runner)
            raise Interrupted(f'interrupted after epoch {runner.epoch + 1}')

    def after_run(self, runner):
        self._dump(runner)

    def _dump(self, runner):
        model = self._model(runner)
        self.record['end'] = dict(
            iter=runner.iter, epoch=runner.epoch,
            params=tensor_digest(sorted(model.named_parameters())),
            state=tensor_digest(sorted(model.state_dict().items())))
        path = osp.join(runner.work_dir, f'probe_rank{get_rank()}.json')
        with open(path, 'w') as f:
            json.dump(self.record, f)
