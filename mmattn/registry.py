"""The ``mmattn`` registry scope.

Every module of this package is registered in :data:`MODELS`, a child of mmengine's root model
registry under the scope ``mmattn``. A config of any OpenMMLab library reaches it with::

    custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)
    plugins = [dict(cfg=dict(type='mmattn.SE'), position='after_conv3')]
"""
import difflib

from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry


class _ScopeRegistry(Registry):
    """A registry that says what it has when asked for a name it lacks.

    mmengine's ``Registry.get`` returns ``None`` for a missing name, and callers such as mmcv's
    ``build_plugin_layer`` then raise a bare ``KeyError`` with the name alone. A name asked of
    this scope that neither it nor its ancestors know is a typo in a config: say so here, with
    the closest registered names.
    """

    def get(self, key):
        obj = super().get(key)
        if obj is None and isinstance(key, str):
            scope, real_key = self.split_scope_key(key)
            if scope in (None, self.scope):
                known = sorted(self._module_dict)
                close = difflib.get_close_matches(real_key, known, n=3, cutoff=0.5)
                hint = (f' Did you mean {", ".join(f"{self.scope}.{c}" for c in close)}?'
                        if close else '')
                raise KeyError(
                    f'{real_key!r} is not a module of the {self.scope!r} scope.{hint} '
                    f'Registered: {", ".join(known)}. '
                    f'Run `python -m mmattn list` to see every module with its paper.')
        return obj

    def __contains__(self, key):
        try:
            return self.get(key) is not None
        except KeyError:
            return False


MODELS = _ScopeRegistry(
    'model', parent=MMENGINE_MODELS, scope='mmattn', locations=['mmattn.models'])

# Runner hooks (``custom_hooks = [dict(type='mmattn.AttentionCheckHook')]``)
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='mmattn', locations=['mmattn.engine'])

# Training loops (``train_cfg = dict(type='mmattn.EpochBasedTrainLoop', ...)``)
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, scope='mmattn', locations=['mmattn.engine'])
