"""Let torch's safe checkpoint loader read the checkpoints mmengine writes.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``, which refuses any pickled
global that is not on an allow-list. mmengine 0.10 calls ``torch.load`` without the argument,
and its checkpoints carry numpy scalars and arrays (in ``meta``) and the message hub's
``HistoryBuffer``s, so ``--resume`` and ``load_from`` fail. Switching the safe loader off for
everyone (``weights_only=False`` or ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``) would accept any
pickle. Instead, allow exactly what mmengine writes; every other global is still refused.

One of those is ``builtins.getattr``: a ``HistoryBuffer`` pickles its statistics methods as
``getattr(HistoryBuffer, 'mean')``. A general ``getattr`` would reopen the door to arbitrary
code, so the name is mapped to :func:`_history_buffer_getattr`, which only returns those four
statistics functions of the ``HistoryBuffer`` class.
"""
import pickle

import numpy as np
import torch


_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj, name, *default):
    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is HistoryBuffer and name in _STATISTICS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'mmattn: refusing getattr({type(obj).__name__}, {name!r}) in a checkpoint: only the '
        f'statistics methods of mmengine HistoryBuffers are allowed under weights_only=True')


def _mmengine_checkpoint_globals():
    from mmengine.logging.history_buffer import HistoryBuffer

    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    allowed = [HistoryBuffer, np.ndarray, np.dtype,
               (_history_buffer_getattr, 'builtins.getattr')]
    # A checkpoint names these helpers after the numpy that wrote it, not the one reading it.
    for mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        allowed += [(_reconstruct, f'{mod}._reconstruct'), (scalar, f'{mod}.scalar')]
    # numpy >= 1.25 pickles a scalar's dtype by its class (numpy.dtypes.Float64DType, ...).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')
                    and isinstance(getattr(dtypes, n), type)]
    return allowed


def allow_mmengine_checkpoints() -> None:
    """Add what mmengine's checkpoints contain to torch's safe-load allow-list (idempotent)."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:  # torch < 2.4 has no allow-list and loads everything anyway
        return
    add(_mmengine_checkpoint_globals())
