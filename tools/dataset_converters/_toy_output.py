"""How the toy-data generators (``make_toy_*.py``) write their output; not a script.

A generator builds its dataset in a temporary folder next to the target and swaps it in at the
end, with a stamp file (its version and arguments) written last: an interrupted run leaves no
half-written dataset behind a valid stamp, and a run whose stamp matches has nothing to do.
Folders of the same names that no generator wrote are replaced only with ``--force``.
"""
import json
import os
import os.path as osp
import shutil
import tempfile
from contextlib import contextmanager


def write_png(path, array):
    """A PNG with fixed compression settings; Pillow picks RGB for HxWx3 uint8, L for uint8,
    I;16 (16-bit PNG) for uint16. PNG written by Pillow carries no timestamp, so the bytes
    depend on the pixels alone."""
    from PIL import Image

    Image.fromarray(array).save(path, format='PNG', compress_level=6, optimize=False)


def read_stamp(out, stamp_name):
    """The stamp in ``out``, or None where there is none (or it does not parse)."""
    try:
        with open(osp.join(out, stamp_name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def refuse_foreign_data(out, stamp_name, folders):
    """Exit where ``out`` holds any of ``folders`` but no stamp: data a generator did not
    write, which only ``--force`` replaces."""
    if osp.isdir(out) and read_stamp(out, stamp_name) is None and any(
            osp.exists(osp.join(out, name)) for name in folders):
        listing = ', '.join(f'{name}/' for name in folders[:-1]) + f' and {folders[-1]}/'
        raise SystemExit(f'{out} holds data this generator did not write; pass --force to '
                         f'replace its {listing}')


@contextmanager
def staged_output(out, stamp_name, stamp, folders, prefix):
    """Yield a temporary folder next to ``out`` to write ``folders`` into; when the block
    ends without an error, write ``stamp`` there and swap it all into ``out`` (replacing the
    stamp and ``folders`` there, the stamp removed first and put back last). The temporary
    folder is removed either way."""
    parent = osp.dirname(osp.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=prefix, dir=parent)
    try:
        yield tmp
        with open(osp.join(tmp, stamp_name), 'w') as f:
            json.dump(stamp, f, sort_keys=True)
        os.makedirs(out, exist_ok=True)
        ours = (stamp_name, ) + tuple(folders)
        for name in ours:
            target = osp.join(out, name)
            if osp.isdir(target):
                shutil.rmtree(target)
            elif osp.exists(target):
                os.remove(target)
        # the stamp goes last: it is what marks the output as complete
        for name in ours[1:] + ours[:1]:
            os.replace(osp.join(tmp, name), osp.join(out, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
