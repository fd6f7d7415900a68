"""The ``mmattn`` registry scope.

Every module of this package is registered in :data:`MODELS`, a child of mmengine's root model
registry under the scope ``mmattn``. A config of any OpenMMLab library reaches it with::

    custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)
    plugins = [dict(cfg=dict(type='mmattn.SE'), position='after_conv3')]

Registering one of mmattn's classes here wraps its constructor with the checks of
:mod:`mmattn.arguments` (an unknown keyword names the class, the argument and the closest valid
one), however the class is then built.
"""
import difflib
import inspect

from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

from mmattn.arguments import check_constructor


class _CheckedRegistry(Registry):
    """A registry whose classes have their constructor arguments checked
    (:func:`mmattn.arguments.check_constructor`): mmattn's own classes (a class of another
    package registered here keeps its constructor as it is)."""

    def _register_module(self, module, module_name=None, force=False):
        if inspect.isclass(module) and module.__module__.split('.')[0] == 'mmattn':
            check_constructor(module)
        super()._register_module(module, module_name, force)


class _ScopeRegistry(_CheckedRegistry):
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
                    f'Run `python -m mmattn list` to see every module, backbone, neck and head '
                    f'with its arguments.')
        return obj

    def __contains__(self, key):
        try:
            return self.get(key) is not None
        except KeyError:
            return False


MODELS = _ScopeRegistry(
    'model', parent=MMENGINE_MODELS, scope='mmattn', locations=['mmattn.models'])

# Runner hooks (``custom_hooks = [dict(type='mmattn.AttentionCheckHook')]``)
HOOKS = _CheckedRegistry('hook', parent=MMENGINE_HOOKS, scope='mmattn', locations=['mmattn.engine'])

# Training loops (``train_cfg = dict(type='mmattn.EpochBasedTrainLoop', ...)``)
LOOPS = _CheckedRegistry('loop', parent=MMENGINE_LOOPS, scope='mmattn',
                         locations=['mmattn.engine'])
