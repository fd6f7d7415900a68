"""mmattn's runner hooks: which attention modules will not learn (:class:`AttentionCheckHook`),
what a resumed run needs to continue exactly (:class:`ResumeStateHook`), and one model for
every process of a distributed validation (:class:`BroadcastBuffersHook`)."""
from mmengine.dist import all_gather_object, broadcast, get_world_size, is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import IterBasedTrainLoop
from mmengine.runner.base_loop import BaseLoop

from mmattn.registry import HOOKS
from mmattn.utils.resume import capture_rng_state
from mmattn.utils.pretrained import AttentionLoadRecorder, frozen_attention, \
    pretrained_inits, report_attention_missing

_ADVICE = (
    "mmdet's and mmseg's ResNet freeze the stages up to frozen_stages whole, the attention "
    "modules inside them included, and a plain ResNet checkpoint (torchvision's, "
    "open-mmlab's) holds none of their weights. Use backbone type='mmattn.AttnResNet' "
    "(detection) or 'mmattn.AttnResNetV1c'/'mmattn.AttnResNetV1d' (segmentation): the same "
    "arguments, weights and keys, and frozen_stages leaves the attention modules training "
    "(freeze_plugins=True freezes them too, for a checkpoint that holds them)")


def _short(names, limit=8):
    if len(names) <= limit:
        return ', '.join(names)
    return ', '.join(names[:limit]) + f', ... ({len(names) - limit} more)'


@HOOKS.register_module()
class AttentionCheckHook(Hook):
    """Before the first iteration, warn about attention modules that will not learn.

    - Modules with parameters that cannot train (``requires_grad=False``): one warning naming
      them, e.g. the CBAM modules of ``layer1`` that mmdet's ``ResNet(frozen_stages=1,
      plugins=...)`` freezes with the stage, at their random initialisation for the whole run.
      Modules that an mmattn backbone froze because its config said ``freeze_plugins=True``
      are left out: that is asked for.
    - A submodule whose ``init_cfg`` loaded a pretrained checkpoint holding no weights of its
      attention modules: one line per module type, with the converter that writes such a
      checkpoint (mmattn's backbones say this themselves in ``init_weights``; this covers the
      others, e.g. mmdet's ``ResNet`` with ``plugins=``). Skipped when the run resumes or
      loads a whole checkpoint (``load_from``), which replaces those weights.

    ``tools/train.py`` adds it to every run; with mmdet's or mmseg's own ``train.py`` add
    ``custom_hooks = [dict(type='mmattn.AttentionCheckHook')]`` to the config.

    The runner initialises the model between ``before_run`` and ``before_train``: recorders
    opened in ``before_run`` see which attention modules mmengine's loads fill, so the
    checkpoint is not read again. A module initialised before the run started has its
    checkpoint's keys read again instead.
    """

    priority = 'VERY_LOW'

    def before_run(self, runner) -> None:
        self._close_recorders()
        if not is_main_process():
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        # a module mmengine already initialised loads nothing more in this run
        self._recorders = {name: AttentionLoadRecorder(m).open()
                           for name, m in model.named_modules()
                           if pretrained_inits(getattr(m, 'init_cfg', None))
                           and not getattr(m, '_is_init', False)}

    def after_run(self, runner) -> None:
        self._close_recorders()  # a run that never trained (val, test)

    def _close_recorders(self):
        recorders = getattr(self, '_recorders', None) or {}
        for recorder in recorders.values():
            recorder.close()
        self._recorders = {}
        return recorders

    def before_train(self, runner) -> None:
        if not is_main_process():
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self.messages = []
        recorders = self._close_recorders()
        frozen = frozen_attention(model)
        if frozen:
            count = sum(len(v) for v in frozen.values())
            kinds = ', '.join(f'{len(v)} {k}' for k, v in frozen.items())
            names = [n for v in frozen.values() for n in v]
            # mmattn's backbones freeze them only when asked (freeze_plugins=True, left out
            # above): there something else set requires_grad
            ours = {id(x) for m in model.modules() if hasattr(m, 'stage_attention_modules')
                    for x in m.modules()}
            advice = _ADVICE if any(id(model.get_submodule(n)) not in ours for n in names) \
                else ('Their backbone freezes them only with freeze_plugins=True: something '
                      'else set requires_grad=False')
            msg = (f'mmattn: {count} attention module(s) ({kinds}) cannot train '
                   f'(requires_grad=False): their weights stay as initialised (or loaded) for '
                   f'the whole run: '
                   f'{_short(names)}. {advice}.')
            self.messages.append(msg)
            print_log(msg, logger=runner.logger, level=30)
        if getattr(runner, '_load_from', None) or getattr(runner, '_resume', False):
            return
        for name, m in model.named_modules():
            if getattr(m, '_attention_init_reported', False) \
                    or not pretrained_inits(getattr(m, 'init_cfg', None)):
                continue
            recorder = recorders.get(name)
            self.messages += report_attention_missing(
                m, owner=name, logger=runner.logger,
                loads=recorder.loads if recorder is not None else None)


@HOOKS.register_module()
class ResumeStateHook(Hook):
    """Write into every checkpoint what a resumed run needs to continue exactly, and hand it to
    the training loop when the run resumes.

    Into ``meta['mmattn_resume']`` of each checkpoint it writes where the run is (epochs and
    iterations done, the batch inside the epoch, what comes next: the rest of the epoch, the
    epoch's end, a validation, or the next epoch) and the random-number states of Python, numpy
    and torch of every process. On ``--resume`` it gives them to the training loop, which
    must be ``mmattn.EpochBasedTrainLoop`` or ``mmattn.IterBasedTrainLoop``
    (:mod:`mmattn.engine.loops`); ``tools/train.py`` sets both. With mmdet's or mmseg's own
    ``train.py`` add to the config::

        custom_hooks = [dict(type='mmattn.ResumeStateHook')]
        train_cfg = dict(type='mmattn.EpochBasedTrainLoop')  # or mmattn.IterBasedTrainLoop

    Its methods run before ``CheckpointHook``'s (priority ``LOW``), so the states it gathers
    from every process are those at the moment the checkpoint is written.
    """

    priority = 'LOW'
    KEY = 'mmattn_resume'

    def __init__(self) -> None:
        self._stage, self._batch, self._gathered = None, 0, None

    # where the run is -------------------------------------------------------------------
    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._stage, self._batch = 'iter', batch_idx

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._gather_if(runner, lambda hook: not hook.by_epoch and (
            hook.every_n_train_iters(runner, hook.interval, hook.save_begin)
            or hook.save_last and hook.is_last_train_iter(runner)))

    def after_train_epoch(self, runner) -> None:
        self._stage = 'epoch_end'
        self._gather_if(runner, lambda hook: hook.by_epoch and (
            hook.every_n_epochs(runner, hook.interval, hook.save_begin)
            or hook.save_last and hook.is_last_train_epoch(runner)))

    def before_val(self, runner) -> None:
        self._stage = 'val'

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._gather_if(runner, lambda hook: hook.save_best is not None)

    def _gather_if(self, runner, saves) -> None:
        """In a distributed run, gather every process's random-number states where a
        CheckpointHook is about to save (only the main process writes the checkpoint)."""
        self._gathered = None
        if get_world_size() > 1 and any(
                saves(h) for h in runner.hooks if isinstance(h, CheckpointHook)):
            self._gathered = all_gather_object(capture_rng_state())

    # writing and reading ----------------------------------------------------------------
    def position(self, runner) -> dict:
        """Where a checkpoint written now leaves the run, and what comes next."""
        loop = runner.train_loop
        by_epoch = not isinstance(loop, IterBasedTrainLoop)
        length = len(loop.dataloader)
        if self._stage == 'iter':  # in after_train_iter: the loop has not counted it yet
            done = self._batch + 1
            if not by_epoch:
                step = 'val'
            else:
                step = 'batch' if done < length else 'epoch_end'
            return dict(epoch=runner.epoch, iter=runner.iter + 1, batch=done, next=step,
                        epoch_length=length)
        if self._stage == 'epoch_end':  # in after_train_epoch: the epoch is not counted yet
            return dict(epoch=runner.epoch + 1, iter=runner.iter, batch=0, next='val',
                        epoch_length=length)
        # during or after a validation, or before any iteration
        return dict(epoch=runner.epoch, iter=runner.iter, batch=0, next='train',
                    epoch_length=length)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # a checkpoint saved outside training has no position (and must not build the loop)
        if not isinstance(runner._train_loop, BaseLoop):
            return
        record = self.position(runner)
        # the gathered states belong to this save only if they were gathered for it; else
        # this process's own
        gathered = self._gathered is not None and len(self._gathered) == runner.world_size
        record['rng'] = self._gathered if gathered else [capture_rng_state()]
        checkpoint.setdefault('meta', {})[self.KEY] = record

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not runner._resume:  # load_from: weights only, a new run
            return
        record = (checkpoint.get('meta') or {}).get(self.KEY)
        loop = runner.train_loop
        if record is None:
            print_log('mmattn: the checkpoint holds no resume record (it was written without '
                      'mmattn.ResumeStateHook): the run resumes as mmengine resumes, at the '
                      'start of the epoch, with other random numbers than the interrupted '
                      'run would have drawn', logger=runner.logger, level=30)
            return
        if not hasattr(loop, 'resume_state'):
            print_log(f'mmattn: the training loop {type(loop).__name__} cannot continue where '
                      f'the checkpoint was written; set train_cfg type to '
                      f'mmattn.EpochBasedTrainLoop or mmattn.IterBasedTrainLoop to resume '
                      f'exactly', logger=runner.logger, level=30)
            return
        loop.resume_state = dict(record)


@HOOKS.register_module()
class BroadcastBuffersHook(Hook):
    """Before each validation of a distributed run, give every process the main process's
    buffers (batch-norm running statistics), so that the validation evaluates the model the
    checkpoint holds, whatever the number of processes.

    mmengine wraps the model with ``broadcast_buffers=False``: each process keeps the running
    statistics of its own share of the data, and only the main process's reach the
    checkpoint. Without this hook, validation inside ``tools/dist_train.sh N`` scores each
    process's share of the images with that process's statistics, and differs from
    ``tools/test.py`` and ``tools/dist_test.sh`` on the saved checkpoint. Training is
    unchanged: in training mode batch norm normalises with the batch's statistics, and the
    main process's own buffers (those saved) are not touched. (mmengine's ``SyncBuffersHook``
    averages the buffers instead, which changes the saved statistics, and in an
    iteration-based run only after the checkpoint before the validation was written.)

    ``tools/train.py`` adds it to every run; with mmdet's or mmseg's own ``train.py`` add
    ``custom_hooks = [dict(type='mmattn.BroadcastBuffersHook')]``.
    """

    priority = 'NORMAL'

    def before_val(self, runner) -> None:
        if get_world_size() < 2:
            return
        for buffer in runner.model.buffers():
            broadcast(buffer, src=0)
