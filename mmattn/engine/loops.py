"""mmengine's training loops, resumable at the iteration a checkpoint was written.

``mmattn.EpochBasedTrainLoop`` and ``mmattn.IterBasedTrainLoop`` are mmengine's loops of the
same names; a run that is not resumed goes through mmengine's own ``run``. A run resumed from
a checkpoint that :class:`~mmattn.engine.hooks.ResumeStateHook` wrote continues exactly where
the interrupted run was when it wrote the checkpoint:

- in the middle of an epoch (a checkpoint saved every N iterations, ``CheckpointHook(by_epoch=
  False, interval=N)``): the batches the epoch has already trained are loaded and skipped
  (mmengine's epoch-based loop would train the epoch again from its first batch);
- at the end of an epoch or at an iteration the schedule validates: the validation that came
  after the checkpoint in the interrupted run is run first (mmengine skips it);
- the random-number generators of Python, numpy and torch (every process's) are set to their
  states when the checkpoint was written, after the skipped batches were loaded, so that the
  data pipeline's random transforms and the model's random sampling draw what they drew.

Data loader workers hold random-number states of their own. Skipped batches are loaded, not
only skipped in the sampler, so that workers started for the resumed epoch draw what they drew
(mmengine seeds each worker the same way whenever it starts). Workers that live across epochs
(``persistent_workers=True`` in an epoch-based run) carry their states from the epochs before
the checkpoint, which a resumed run does not replay: the resumed run then says that its data
augmentation draws other numbers. With ``num_workers=0`` or ``persistent_workers=False`` (and
in iteration-based runs, whose workers live for the whole run) the resume is exact.
"""
from typing import Optional

from mmengine.logging import print_log
from mmengine.runner.loops import EpochBasedTrainLoop as _EpochBasedTrainLoop
from mmengine.runner.loops import IterBasedTrainLoop as _IterBasedTrainLoop

from mmattn.registry import LOOPS
from mmattn.utils.resume import restore_rng_state

WARNING = 30


class _ResumableLoop:
    """What both loops share: the state a ResumeStateHook hands over on resume."""

    #: set by :class:`~mmattn.engine.hooks.ResumeStateHook` when the run resumes from a
    #: checkpoint holding its record (``meta['mmattn_resume']``), taken by :meth:`run`
    resume_state: Optional[dict] = None

    def _take_resume_state(self) -> Optional[dict]:
        state, self.resume_state = self.resume_state, None
        if state is None:
            return None
        world_size = self.runner.world_size
        rngs = state.get('rng') or []
        if len(rngs) != world_size:
            print_log(
                f'mmattn: the checkpoint holds the random-number states of {len(rngs)} '
                f'process(es) and this run has {world_size}: the resumed run draws other '
                f'random numbers than the interrupted one would have', logger='current',
                level=WARNING)
            state['rng'] = None
        else:
            state['rng'] = rngs[self.runner.rank]
        return state

    def _restore_rng(self, state: dict) -> None:
        if state.get('rng') is not None:
            restore_rng_state(state['rng'])

    def _set_position(self, state: dict) -> None:
        self._epoch, self._iter = state['epoch'], state['iter']
        # mmengine counts gradient accumulation from the iteration it resumed at
        self.runner.optim_wrapper.initialize_count_status(self.runner.model, self._iter,
                                                          self._max_iters)


@LOOPS.register_module()
class EpochBasedTrainLoop(_ResumableLoop, _EpochBasedTrainLoop):
    """mmengine's ``EpochBasedTrainLoop``, resumable within an epoch (see the module)."""

    def run(self):
        state = self._take_resume_state()
        if state is None:
            return super().run()
        if state.get('epoch_length') != len(self.dataloader):
            print_log(
                f'mmattn: the checkpoint was written by a run of {state.get("epoch_length")} '
                f'iterations an epoch; this one has {len(self.dataloader)} (another data set '
                f'or batch size?): resuming at the start of epoch {state["epoch"] + 1}, as '
                f'mmengine does', logger='current', level=WARNING)
            return super().run()
        self._warn_persistent_workers()
        self._set_position(state)
        self.runner.call_hook('before_train')
        step = state['next']
        if step == 'batch':
            self._run_epoch_from(state['batch'], state)
            self._validate_if_due()
        else:
            self._restore_rng(state)
            if step == 'epoch_end':
                self.runner.call_hook('before_train_epoch')
                self.runner.call_hook('after_train_epoch')
                self._epoch += 1
            if step in ('epoch_end', 'val'):
                self._validate_if_due()
        while self._epoch < self._max_epochs and not self.stop_training:
            self.run_epoch()
            self._validate_if_due()
        self.runner.call_hook('after_train')
        return self.runner.model

    def _run_epoch_from(self, start: int, state: dict) -> None:
        """:meth:`run_epoch` from batch ``start`` of the epoch on."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        batches = iter(self.dataloader)
        print_log(f'mmattn: loading and skipping the {start} batch(es) epoch '
                  f'{self._epoch + 1} trained before the checkpoint', logger='current')
        for _ in range(start):
            next(batches)
        self._restore_rng(state)
        for idx, data_batch in enumerate(batches, start):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1

    def _validate_if_due(self) -> None:
        """mmengine's test after each epoch, as in its ``run``."""
        self._decide_current_val_interval()
        if (self.runner.val_loop is not None and self._epoch >= self.val_begin
                and (self._epoch % self.val_interval == 0
                     or self._epoch == self._max_epochs)):
            self.runner.val_loop.run()

    def _warn_persistent_workers(self) -> None:
        loader = self.dataloader
        if getattr(loader, 'num_workers', 0) > 0 and getattr(loader, 'persistent_workers',
                                                             False):
            print_log(
                'mmattn: the training data loader keeps its workers across epochs '
                '(persistent_workers=True), and their random-number states are not in the '
                'checkpoint: random data transforms draw other numbers than in an '
                'uninterrupted run (num_workers=0 or persistent_workers=False resume exactly)',
                logger='current', level=WARNING)


@LOOPS.register_module()
class IterBasedTrainLoop(_ResumableLoop, _IterBasedTrainLoop):
    """mmengine's ``IterBasedTrainLoop``, with the random-number states and the validation
    after the checkpoint restored on resume (see the module)."""

    def run(self):
        state = self._take_resume_state()
        if state is None:
            return super().run()
        self._set_position(state)
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        # as mmengine's run: the workers of the one data iterator draw what they drew
        print_log(f'mmattn: loading and skipping the {self._iter} batch(es) trained before '
                  f'the checkpoint', logger='current')
        for _ in range(self._iter):
            next(self.dataloader_iterator)
        self._restore_rng(state)
        if state['next'] == 'val':
            self._validate_if_due()
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            data_batch = next(self.dataloader_iterator)
            self.run_iter(data_batch)
            self._validate_if_due()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model

    def _validate_if_due(self) -> None:
        """mmengine's test after each iteration, as in its ``run``."""
        self._decide_current_val_interval()
        if (self.runner.val_loop is not None and self._iter >= self.val_begin
                and (self._iter % self.val_interval == 0 or self._iter == self._max_iters)):
            self.runner.val_loop.run()
