"""A hook that says, when training starts, which attention modules will not learn."""
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmattn.registry import HOOKS
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
