"""The converters' files: reading a released checkpoint and writing the converted one.

Every problem with a file is one :class:`FileProblem`, a line that names the file and says what
is wrong with it (missing, empty, truncated, text, not a checkpoint, a pickled Python object, a
safetensors file without the package to read it, a destination that is the source or exists
...). Checkpoints are read as tensors and plain containers only (``torch.load(...,
weights_only=True)``): a file is never unpickled as code, and no message suggests otherwise.

The converted file is written to a temporary file in the destination's folder and renamed over
the destination once complete, so a write that fails (a full disk) leaves no partial file, and
an existing destination as it was.
"""
import argparse
import json
import os
import os.path as osp
import struct
import tempfile
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

import torch

# reading a checkpoint file is shared with tools/train.py and tools/test.py
from mmattn.utils import checkpoint as checkpoint_files
from mmattn.utils.checkpoint import ZIP_MAGIC, CheckpointFileError
from mmattn.utils.checkpoint import describe_text as _describe_text
from mmattn.utils.checkpoint import first_line as _first_line
from .common import ConversionError, short_list
# where a training checkpoint nests its state dict, in order of preference
STATE_KEYS = ('state_dict', 'model')
# a timm training checkpoint stores its argparse options under 'args'; an argparse.Namespace is
# a plain attribute holder, safe to rebuild
SAFE_GLOBALS = (argparse.Namespace, )


class FileProblem(ConversionError):
    """A file that cannot be read, or written, as asked: the message names it."""


@dataclass
class Source:
    """A released checkpoint as read from disk.

    Attributes:
        path: the path given.
        state: its state dict (``module.`` prefixes removed).
        extras: the other top-level entries of a training checkpoint (``epoch``, ``arch``,
            ``meta`` ...), or a safetensors file's metadata.
        kind: ``'torch'`` (zip archive), ``'torch-legacy'`` or ``'safetensors'``.
    """
    path: str
    state: Dict[str, torch.Tensor]
    extras: Dict[str, Any] = field(default_factory=dict)
    kind: str = 'torch'


def _problem(path: str, what: str) -> FileProblem:
    return FileProblem(f'{path}: {what}')


@contextmanager
def _as_problems():
    """mmattn's checkpoint reader's one-line refusals, as the converters' FileProblem."""
    try:
        yield
    except CheckpointFileError as err:
        raise FileProblem(str(err)) from None


def _torch_load(path: str, head: bytes, size: int) -> Any:
    with _as_problems():
        return checkpoint_files.load_torch_file(path, head, size, SAFE_GLOBALS)


def check_readable(path: str) -> int:
    """Refuse a path that is not a readable, non-empty regular file; returns its size."""
    with _as_problems():
        return checkpoint_files.check_readable(path)


def _is_safetensors(head: bytes, size: int) -> bool:
    """A safetensors file: an 8-byte little-endian header length, then a JSON header."""
    if len(head) < 9:
        return False
    (n, ) = struct.unpack('<Q', head[:8])
    return 0 < n <= size - 8 and head[8:9] == b'{'


def _read_safetensors(path: str) -> Source:
    try:
        from safetensors import safe_open
    except ImportError:
        raise _problem(path, 'a safetensors file; reading it needs the safetensors package, '
                       'which is not installed (pip install safetensors)') from None
    try:
        state = OrderedDict()
        with safe_open(path, framework='pt', device='cpu') as f:
            metadata = dict(f.metadata() or {})
            for key in f.keys():
                state[key] = f.get_tensor(key)
    except Exception as err:  # safetensors raises its own SafetensorError
        raise _problem(path, f'a damaged or truncated safetensors file ({_first_line(err)})'
                       ) from None
    return Source(path, state, metadata, 'safetensors')


def unwrap_state(path: str, obj: Any) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """The state dict in a loaded checkpoint (itself, or under ``state_dict``/``model``, with
    ``module.`` prefixes removed) and the checkpoint's other top-level entries."""
    extras: Dict[str, Any] = {}
    for _ in range(2):
        if isinstance(obj, Mapping):
            for key in STATE_KEYS:
                if isinstance(obj.get(key), Mapping):
                    extras.update((k, v) for k, v in obj.items() if k != key)
                    obj = obj[key]
                    break
    if not isinstance(obj, Mapping):
        raise _problem(path, f'holds a {type(obj).__name__}, not a state dict')
    not_tensors = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not obj or len(not_tensors) == len(obj):
        nested = [f'{k!r} ({len(v)} entries)' for k, v in obj.items()
                  if isinstance(v, Mapping) and v
                  and all(isinstance(t, torch.Tensor) for t in v.values())]
        raise _problem(path, 'holds no tensors' + (
            f' at its top level: no {" or ".join(repr(k) for k in STATE_KEYS)} entry, and '
            f'state dicts under {", ".join(nested)}' if nested else
            f' (a {type(obj).__name__} with keys {short_list([str(k) for k in obj], 6)})'
            if obj else ' (an empty dict)'))
    if not_tensors:
        raise _problem(path, 'not a state dict: entries that are not tensors: '
                       + short_list([str(k) for k in not_tensors]))
    state = OrderedDict(obj)
    if all(k.startswith('module.') for k in state):
        state = OrderedDict((k[len('module.'):], v) for k, v in state.items())
    return state, extras


def _head(path: str) -> Tuple[bytes, int]:
    with _as_problems():
        return checkpoint_files.read_head(path)


def load_checkpoint(path: str) -> Any:
    """What ``torch.save`` wrote to ``path``, read as tensors and plain containers only; any
    problem with the file is one :class:`FileProblem` line."""
    head, size = _head(path)
    return _torch_load(path, head, size)


def read_source(path: str) -> Source:
    """Read a released checkpoint: a ``.pth``/``.pth.tar``/``.bin`` written by ``torch.save``
    (the state dict itself, or nested under ``state_dict`` or ``model``), or a
    ``.safetensors`` file (with the ``safetensors`` package)."""
    head, size = _head(path)
    named = path.lower().endswith('.safetensors')
    if _is_safetensors(head, size) or named and _describe_text(head) is None and not \
            head.startswith((ZIP_MAGIC, b'\x80')):
        return _read_safetensors(path)
    obj = _torch_load(path, head, size)
    state, extras = unwrap_state(path, obj)
    return Source(path, state, extras, 'torch' if head.startswith(ZIP_MAGIC) else
                  'torch-legacy')


def read_json(path: str) -> Optional[dict]:
    """A JSON object file, or None where there is none or it cannot be read."""
    try:
        with open(path, encoding='utf-8') as f:
            obj = json.load(f)
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


# ---------------------------------------------------------------------------------------------
# the destination


def check_destination(src: str, dst: str, force: bool = False) -> None:
    """Refuse a destination that is a directory, the source itself (the same path, a hard link
    or a symbolic link to it, whatever ``force``), or an existing file without ``force``;
    checked before anything is read or written."""
    if osp.isdir(dst):
        raise _problem(dst, 'a directory; give the path of the file to write, e.g. '
                       f'{osp.join(dst, osp.splitext(osp.basename(src))[0] + "_mmattn.pth")}')
    if osp.exists(dst) and osp.exists(src) and osp.samefile(src, dst):
        how = ('the same path' if osp.abspath(src) == osp.abspath(dst) else
               'a symbolic link to it' if osp.islink(dst) or osp.islink(src) else
               'a hard link to it')
        raise _problem(dst, f'is the source checkpoint {src} ({how}); refusing to overwrite '
                       f'the released file: give another destination')
    if osp.lexists(dst) and not force:
        raise _problem(dst, 'exists; refusing to overwrite it (give --force to replace it)')
    folder = osp.dirname(osp.abspath(dst))
    parent = folder
    while not osp.exists(parent):
        parent = osp.dirname(parent)
    if not osp.isdir(parent):
        raise _problem(dst, f'cannot be created: {parent} is a file, not a directory')


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(obj: Any, dst: str) -> None:
    """``torch.save(obj)`` to a temporary file in ``dst``'s folder, then renamed over ``dst``:
    ``dst`` is either the complete new file or as it was before."""
    folder = osp.dirname(osp.abspath(dst))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(dst)}.', suffix='.part',
                                   dir=folder)
    except OSError as err:
        raise _problem(dst, f'cannot be written ({err.strerror or err}); no file was written'
                       ) from None
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file private to its owner; give it a new file's usual mode
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, dst)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(err, (OSError, RuntimeError)):
            reason = err.strerror if isinstance(err, OSError) and err.strerror else \
                _first_line(err)
            raise _problem(dst, f'writing failed ({reason}); no file was written'
                           + (' (the existing file is unchanged)' if osp.exists(dst)
                              else '')) from None
        raise
