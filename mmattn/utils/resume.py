"""Resuming a run: which checkpoint, whether anything is left to train, and the random-number
states a resumed run needs (written into checkpoints by ``mmattn.ResumeStateHook``)."""
import os
import os.path as osp
from typing import Optional, Tuple

import torch

from .checkpoint import is_complete


def latest_checkpoint(work_dir: str) -> Tuple[Optional[str], Optional[str]]:
    """The checkpoint ``--resume`` without a path continues from, and a note when it is not
    the one mmengine's ``last_checkpoint`` record names.

    mmengine writes ``last_checkpoint`` after each checkpoint. A run killed while writing
    either leaves the record empty, or naming a file that is gone (``max_keep_ckpts`` removes
    the previous checkpoint before the new one is written) or cut short. Then the newest
    complete checkpoint in ``work_dir`` is the one to continue from.
    """
    if not work_dir or not osp.isdir(work_dir):
        return None, None
    record = osp.join(work_dir, 'last_checkpoint')
    named = None
    if osp.isfile(record):
        with open(record) as f:
            named = f.read().strip() or None
        if named and not osp.isabs(named) and not osp.exists(named):
            named = osp.join(work_dir, osp.basename(named))
        if named and is_complete(named):
            return named, None
    candidates = sorted((osp.join(work_dir, f) for f in os.listdir(work_dir)
                         if f.endswith('.pth')), key=osp.getmtime, reverse=True)
    found = next((c for c in candidates if is_complete(c)), None)
    if named is None and not osp.isfile(record):
        return found, None
    why = ('is empty' if named is None else
           f'names {named}, which does not exist' if not osp.exists(named) else
           f'names {named}, which is incomplete (the run was stopped while writing it)')
    if found is None:
        return None, f'{record} {why}, and {work_dir} holds no complete checkpoint'
    return found, f'{record} {why}: resuming from {found}, the newest complete checkpoint'


def resume_checkpoint(cfg) -> Optional[str]:
    """The checkpoint a resumed run of ``cfg`` would start from: ``cfg.load_from`` if set,
    else the work directory's latest (:func:`latest_checkpoint`), else None."""
    if cfg.get('load_from'):
        return cfg.load_from
    return latest_checkpoint(cfg.get('work_dir'))[0]


def nothing_left_to_train(cfg, checkpoint: Optional[str] = None,
                          meta: Optional[dict] = None) -> Optional[str]:
    """A message if ``checkpoint`` (default: :func:`resume_checkpoint`) already holds the end
    of ``cfg``'s training loop, else None. ``meta``: the checkpoint's, if already read.

    mmengine's loops run ``while epoch < max_epochs`` / ``while iter < max_iters`` from the
    checkpoint's ``meta``; from a finished run's last checkpoint they do no step, then run the
    after-training hooks (which may validate and save again). Saying so up front leaves the
    checkpoints as they are.
    """
    checkpoint = checkpoint or resume_checkpoint(cfg)
    train_cfg = cfg.get('train_cfg') or {}
    if not checkpoint or not osp.isfile(checkpoint):
        return None
    if 'max_epochs' in train_cfg:
        unit, limit = 'epoch', train_cfg['max_epochs']
    elif 'max_iters' in train_cfg:
        unit, limit = 'iter', train_cfg['max_iters']
    else:
        return None
    if meta is None:
        # mmattn allow-lists what mmengine writes, so torch's safe loader reads its checkpoints
        meta = torch.load(checkpoint, map_location='cpu').get('meta') or {}
    done = meta.get(unit)
    if not isinstance(done, int) or done < limit:
        return None
    unit_name = 'epochs' if unit == 'epoch' else 'iterations'
    return (f'nothing left to train: {checkpoint} is the end of {unit} {done}, and the config '
            f'trains for max_{unit}s={limit} {unit_name}. The checkpoints are left as they '
            f'are. To train further, raise it (e.g. --cfg-options '
            f'train_cfg.max_{unit}s={limit * 2}, with a schedule that goes that far); to '
            f'evaluate, run tools/test.py {cfg.filename or "CONFIG"} {checkpoint}.')


# -- random-number states ----------------------------------------------------------------------

def capture_rng_state() -> dict:
    """The states of Python's, numpy's and torch's global random-number generators (and of
    every CUDA device's, once CUDA is initialised), as tensors, numbers and tuples only, so
    that torch's safe loader reads them back from a checkpoint."""
    import random

    import numpy as np
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = dict(python=random.getstate(),
                 numpy=(kind, torch.from_numpy(keys.astype(np.int64)), int(pos),
                        int(has_gauss), float(cached)),
                 torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Set the generators to a state :func:`capture_rng_state` returned."""
    import random

    import numpy as np
    python = state['python']
    # a tuple pickled and read back may come as a list
    random.setstate((python[0], tuple(python[1]), python[2]))
    kind, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state['torch'])
    if state.get('cuda') is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])
