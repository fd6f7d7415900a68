"""An up-front check of the pretrained weights a config asks torchvision for.

mmengine resolves ``init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')``,
which every mmdet Faster R-CNN config (and so every ``configs/faster_rcnn_*``) inherits, by
importing torchvision for its table of download addresses
(``mmengine.runner.checkpoint.get_torchvision_models``). Without a torchvision that works with
the installed torch, training fails deep inside ``init_weights``, after the work directory and
its log are written, with ``ModuleNotFoundError: No module named 'torchvision'`` (or, beside a
torch it was not built for, ``RuntimeError: operator torchvision::nms does not exist``) and no
word about the setting that caused it or what to do. PyPI's torchvision wheels are built
against PyPI's CUDA torch, so a CPU build of torch has no PyPI torchvision that imports
(``tools/setup_env.sh`` says so when it meets one).

:func:`check_pretrained_available` finds those checkpoints in a config and, before anything
is built or written, raises :class:`PretrainedUnavailableError` naming each one, why it
cannot load, and three ways on.
"""
import json
import os.path as osp
import re
from typing import List, Optional, Tuple

__all__ = ['PretrainedUnavailableError', 'check_pretrained_available',
           'find_torchvision_checkpoints', 'torchvision_problem']

# mmengine's schemes that go through torchvision ('modelzoo://' is its deprecated alias)
TORCHVISION_PREFIXES = ('torchvision://', 'modelzoo://')


class PretrainedUnavailableError(RuntimeError):
    """A config asks for ``torchvision://`` weights and torchvision cannot serve them."""


def find_torchvision_checkpoints(cfg) -> List[Tuple[str, str]]:
    """``(key, checkpoint)`` for every ``torchvision://`` checkpoint the config would load.

    ``key`` is the dotted path that ``--cfg-options`` takes (list items by index), e.g.
    ``('model.backbone.init_cfg.checkpoint', 'torchvision://resnet50')``. Looks at every
    ``init_cfg`` under ``model`` (a dict or a list of dicts) and at ``load_from``.
    """
    found = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                sub = f'{path}.{key}'
                if key == 'init_cfg':
                    inits = value if isinstance(value, (list, tuple)) else [value]
                    for i, init in enumerate(inits):
                        init_path = sub if inits is not value else f'{sub}.{i}'
                        if isinstance(init, dict) and _is_torchvision(init.get('checkpoint')):
                            found.append((f'{init_path}.checkpoint', init['checkpoint']))
                walk(value, sub)
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                walk(value, f'{path}.{i}')

    walk(cfg.get('model'), 'model')
    if _is_torchvision(cfg.get('load_from')):
        found.append(('load_from', cfg['load_from']))
    return found


def _is_torchvision(checkpoint) -> bool:
    return isinstance(checkpoint, str) and checkpoint.startswith(TORCHVISION_PREFIXES)


def torchvision_problem() -> Optional[str]:
    """None if torchvision imports and runs its compiled ops; else what went wrong."""
    try:
        import torch
        import torchvision

        # A torchvision built for another torch imports its Python code but not its ops.
        torchvision.ops.nms(torch.zeros(1, 4), torch.ones(1), 0.5)
    except Exception as e:  # noqa: BLE001 (any failure means mmengine cannot use it)
        return f'{type(e).__name__}: {e}'
    return None


def _download_url(checkpoint: str) -> Optional[str]:
    """The address mmengine would download ``torchvision://NAME`` from, if it lists it.

    mmengine keeps the addresses of torchvision < 0.13 (``resnet50`` and the other names
    mmdet's configs use) in a file of its own; newer names come from torchvision itself.
    """
    import mmengine
    name = checkpoint.split('://', 1)[1]
    path = osp.join(mmengine.__path__[0], 'hub', 'torchvision_0.12.json')
    try:
        with open(path) as f:
            return json.load(f).get(name)
    except (OSError, ValueError):
        return None


def _paired_torchvision(torch_version: str) -> str:
    # torchvision 0.N+15 is released with torch 2.N (0.28 with 2.13, 0.20 with 2.5).
    match = re.match(r'2\.(\d+)\.', torch_version)
    return f'torchvision==0.{int(match.group(1)) + 15}.*' if match else 'its torchvision'


def check_pretrained_available(cfg, config_name: Optional[str] = None) -> None:
    """Raise :class:`PretrainedUnavailableError` if ``cfg`` asks torchvision for weights it
    cannot give; do nothing (and import nothing) when it asks for none."""
    wanted = find_torchvision_checkpoints(cfg)
    if not wanted:
        return
    problem = torchvision_problem()
    if problem is None:
        return
    import torch
    name = config_name or getattr(cfg, 'filename', None) or 'the config'
    lines = [f'{name} asks for pretrained weights through torchvision, which does not work '
             f'in this environment ({problem}); mmengine looks up every '
             f'{TORCHVISION_PREFIXES[0]} checkpoint through it:']
    lines += [f'  {key} = {checkpoint!r}' for key, checkpoint in wanted]
    tv = _paired_torchvision(torch.__version__)
    lines += [
        'Either:',
        f'  - install the torchvision built for your torch {torch.__version__}, pinning torch '
        f'so that pip keeps it: pip install "torch=={torch.__version__}" "{tv}" from the index '
        'your torch came from (PyPI\'s torchvision wheels need PyPI\'s CUDA torch; CPU and '
        'other CUDA builds: https://download.pytorch.org/whl/cpu, .../whl/cu121, ...; '
        'tools/setup_env.sh installs it where it works, TORCHVISION_SPEC names another);',
    ]
    for key, checkpoint in wanted:
        url = _download_url(checkpoint)
        source = url or f'the file torchvision lists for {checkpoint!r}'
        local = osp.basename(url) if url else 'FILE.pth'
        lines.append(f'  - or download {source} and pass --cfg-options {key}=PATH/{local};')
    # an init_cfg that is a list item cannot be dropped by --cfg-options: name only dicts
    keys = sorted({key.rsplit('.checkpoint', 1)[0] for key, _ in wanted
                   if key.endswith('init_cfg.checkpoint')})
    if keys:
        lines.append('  - or, to train from scratch (or when --resume or load_from brings every '
                     'weight anyway), pass --cfg-options '
                     + ' '.join(f'{k}=None' for k in keys) + '.')
    raise PretrainedUnavailableError('\n'.join(lines))
