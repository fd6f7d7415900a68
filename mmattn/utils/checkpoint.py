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

It also reads checkpoint files for the tools (:func:`read_checkpoint`): as tensors and plain
containers only, every problem with a file (missing, empty, truncated, text, a pickled object
...) one line naming it, and never with the advice to switch the safe loader off.
"""
import os
import os.path as osp
import pickle
import re
import stat
import struct
import zipfile
from typing import Any, Optional, Sequence, Tuple

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


# -- reading a checkpoint file, with one line for every problem --------------------------------

# torch.save's zip archives start like every zip file; its legacy format starts with a pickled
# magic number (protocol 2, a LONG1 of 10 bytes)
ZIP_MAGIC = b'PK\x03\x04'
LEGACY_MAGIC = b'\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19'


class CheckpointFileError(ValueError):
    """A checkpoint file that cannot be read: the message is one line that names the file and
    says what is wrong with it."""


def _problem(path: str, what: str) -> CheckpointFileError:
    return CheckpointFileError(f'{path}: {what}')


def first_line(err: BaseException) -> str:
    """The first line of an exception's message, without torch's advice about the unsafe
    loader (which mmattn never follows)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    keep = [ln for ln in lines if 'weights_only' not in ln]
    return (keep or [type(err).__name__])[0][:200]


def describe_text(head: bytes) -> Optional[str]:
    """What a file that starts with ``head`` is, if it is text."""
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError:
        # a multi-byte character cut at the end of the head is still text
        try:
            text = head[:-3].decode('utf-8')
        except UnicodeDecodeError:
            return None
    if not text or any(c not in '\t\n\r' and not c.isprintable() for c in text):
        return None
    start = ' '.join(text.split())[:48]
    lower = text.lstrip().lower()
    if lower.startswith('version https://git-lfs'):
        return ('a Git LFS pointer, not the checkpoint itself (fetch the file: git lfs pull)')
    if lower.startswith(('<!doctype html', '<html', '<?xml', '<head')):
        return (f'an HTML page (it starts with {start!r}), not a checkpoint: a download that '
                f'returned a web page?')
    return f'a text file (it starts with {start!r}), not a checkpoint'


def check_readable(path: str) -> int:
    """Refuse a path that is not a readable, non-empty regular file; returns its size."""
    if not osp.lexists(path):
        raise _problem(path, 'no such file')
    if not osp.exists(path):
        raise _problem(path, f'a symbolic link to {os.readlink(path)!r}, which does not exist')
    if osp.isdir(path):
        raise _problem(path, 'a directory, not a checkpoint file')
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise _problem(path, 'not a regular file')
    if info.st_size == 0:
        raise _problem(path, 'empty (0 bytes)')
    if not os.access(path, os.R_OK):
        raise _problem(path, 'not readable (permission denied)')
    return info.st_size


def read_head(path: str) -> Tuple[bytes, int]:
    """The first 64 bytes of a readable file (:func:`check_readable`) and its size."""
    size = check_readable(path)
    try:
        with open(path, 'rb') as f:
            return f.read(64), size
    except OSError as err:
        raise _problem(path, f'cannot be read ({err.strerror or err})') from None


def _unsupported_global(err: BaseException) -> Optional[str]:
    found = re.search(r'GLOBAL ([\w.]+)', str(err))
    return found.group(1) if found else None


def load_torch_file(path: str, head: bytes, size: int, safe_globals: Sequence = ()) -> Any:
    """``torch.load(path, weights_only=True)`` of a file that starts with ``head``, with what
    mmengine writes allowed (:func:`allow_mmengine_checkpoints`) and ``safe_globals`` besides;
    every problem is one :class:`CheckpointFileError` line."""
    zipped = head.startswith(ZIP_MAGIC)
    if zipped and not zipfile.is_zipfile(path):
        # a zip archive keeps its directory at the end: without it the file was cut short
        raise _problem(path, f'truncated: a zip archive ({size} bytes) without its end '
                       f'(central directory); download or copy the file again')
    if not zipped and not head.startswith(LEGACY_MAGIC):
        if head[:1] == b'\x80' and head[1:2] in (b'\x02', b'\x03', b'\x04', b'\x05'):
            raise _problem(path, 'a plain Python pickle, not a file written by torch.save; it '
                           'is not unpickled (a pickle can run code): save the state dict '
                           'with torch.save')
        text = describe_text(head)
        if text is not None:
            raise _problem(path, text)
        raise _problem(path, f'not a PyTorch checkpoint (neither a zip archive written by '
                       f'torch.save, nor its legacy format, nor a safetensors file; it starts '
                       f'with bytes {head[:8].hex(" ")})')
    allow_mmengine_checkpoints()
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as err:
        name = _unsupported_global(err)
        if name is not None:
            raise _problem(path, f'holds a pickled Python object ({name}), which is not '
                           f'loaded: a checkpoint is read as tensors and plain containers only '
                           f'(a model saved whole is such an object: save its state_dict())'
                           ) from None
        reason = re.search(r'WeightsUnpickler error:\s*([^\n]+)', str(err))
        raise _problem(path, f'damaged: its pickled data cannot be read as a checkpoint '
                       f'({reason.group(1).strip() if reason else first_line(err)})'
                       ) from None
    except (EOFError, struct.error) as err:
        raise _problem(path, f'truncated: the data ends early ({first_line(err)})') from None
    except (RuntimeError, OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        msg = first_line(err)
        if 'unexpected EOF' in msg or isinstance(err, OSError) and not zipped:
            raise _problem(path, f'truncated: the data ends early ({msg})') from None
        raise _problem(path, f'damaged: not readable as a PyTorch checkpoint ({msg})') from None


def read_checkpoint(path: str, safe_globals: Sequence = ()) -> Any:
    """What ``torch.save`` wrote to ``path``, read as tensors and plain containers only (and
    what mmengine's checkpoints hold); any problem with the file is one
    :class:`CheckpointFileError` line, and none suggests ``weights_only=False``."""
    head, size = read_head(path)
    return load_torch_file(path, head, size, safe_globals)


def is_complete(path: str) -> bool:
    """Whether ``path`` is a non-empty file written by ``torch.save`` to its end, told without
    reading it whole: a zip archive with its central directory (which comes last), or the
    legacy format. A run killed while saving leaves an archive without one."""
    try:
        head, _ = read_head(path)
    except CheckpointFileError:
        return False
    if head.startswith(ZIP_MAGIC):
        return zipfile.is_zipfile(path)
    return head.startswith(LEGACY_MAGIC)


# -- does a checkpoint fit the model? ----------------------------------------------------------

class CheckpointMismatchError(ValueError):
    """A checkpoint whose keys or shapes do not fit the model it is loaded into."""


def _short(names, limit=3) -> str:
    names = list(names)
    shown = ', '.join(names[:limit])
    return shown + (f', ... ({len(names) - limit} more)' if len(names) > limit else '')


def checkpoint_state(checkpoint: Any) -> dict:
    """The state dict mmengine's ``load_checkpoint`` loads from a checkpoint: its
    ``state_dict`` entry (or the checkpoint itself), ``module.`` prefixes removed."""
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else {}
    if not isinstance(state, dict):
        return {}
    return {re.sub(r'^module\.', '', k): v for k, v in state.items() if k != '_metadata'}


def check_checkpoint_fits(model: torch.nn.Module, checkpoint: Any, path: str) -> None:
    """Refuse a checkpoint whose state dict does not fit ``model``: keys the model has and the
    checkpoint lacks (they would stay at their initialisation), keys the checkpoint has and the
    model lacks, and tensors of another shape; the message gives the share of each and a few
    examples."""
    from mmengine.model import BaseTTAModel, is_model_wrapper
    if is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module  # where mmengine loads a checkpoint into
    expected = model.state_dict()
    state = checkpoint_state(checkpoint)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f'{k} {tuple(state[k].shape)} for {tuple(expected[k].shape)}' for k in expected
              if k in state and isinstance(state[k], torch.Tensor)
              and state[k].shape != expected[k].shape]
    if not (missing or unexpected or shapes):
        return
    parts = []
    if missing:
        parts.append(f'{len(missing)} of the model\'s {len(expected)} keys '
                     f'({100 * len(missing) / len(expected):.0f}%) are missing from it '
                     f'(e.g. {_short(missing)})')
    if unexpected:
        parts.append(f'{len(unexpected)} of the checkpoint\'s {len(state)} keys '
                     f'({100 * len(unexpected) / max(len(state), 1):.0f}%) are not in the '
                     f'model (e.g. {_short(unexpected)})')
    if shapes:
        parts.append(f'{len(shapes)} tensor(s) have another shape (e.g. {_short(shapes, 2)})')
    raise CheckpointMismatchError(
        f'{path} does not fit the model of the config: {"; ".join(parts)}. It is a checkpoint '
        f'of another model or config: give the config it was trained with.')


def check_resumable(checkpoint: Any, path: str) -> dict:
    """Refuse a checkpoint a run cannot resume from (a file of weights only, without
    mmengine's ``meta`` with ``epoch`` and ``iter`` and its ``message_hub``); return its meta."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    lacks = [k for k in ('meta', 'message_hub', 'state_dict')
             if not isinstance(checkpoint, dict) or k not in checkpoint]
    if not lacks and not all(isinstance(meta.get(k), int) for k in ('epoch', 'iter')):
        lacks = ['meta.epoch and meta.iter']
    if lacks:
        raise CheckpointMismatchError(
            f'{path} holds weights, not a training state to resume (no {", ".join(lacks)}); '
            f'to start a new run from its weights, pass --cfg-options load_from={path} '
            f'instead of --resume')
    return meta
