"""Which converter fills which attention module, and checks around pretrained checkpoints.

The authors' ImageNet checkpoints (and timm's) hold a ResNet *with* the attention module in it;
``tools/model_converters/convert.py FORMAT SRC DST`` rewrites one into our backbones' keys. The
table here lives in mmattn (not in ``tools/``) because the backbones and the training hook use
it at run time; a test checks it against the converters' ``--list``.

Checks around it, and around the other checkpoints a config starts from:

- :func:`check_pretrained_available`: before a run, a config that asks for ``torchvision://``
  weights (every mmdet Faster R-CNN config, so every ``configs/faster_rcnn_*``) where
  torchvision cannot serve them fails naming the setting, why, and the ways on. mmengine
  resolves those names by importing torchvision for its table of download addresses
  (``mmengine.runner.checkpoint.get_torchvision_models``); without a torchvision that works
  with the installed torch, training would fail deep inside ``init_weights``, after the work
  directory and its log are written, with ``ModuleNotFoundError: No module named
  'torchvision'`` (or, beside a torch it was not built for, ``RuntimeError: operator
  torchvision::nms does not exist``). PyPI's torchvision wheels are built against PyPI's CUDA
  torch, so a CPU build of torch has no PyPI torchvision that imports (``tools/setup_env.sh``
  says so when it meets one).
- :func:`check_remote_checkpoints`: before a run, every checkpoint mmengine's
  ``CheckpointLoader`` would fetch by a URL scheme (``torchvision://``, ``open-mmlab://``,
  ``mmcls://``, ``http(s)://``, ``s3://`` ...) is looked up in mmengine's own tables and found
  in torch's cache or downloaded into it; one that cannot be (no network, a name the tables
  lack, a client that is not installed) fails naming the config key and the ways on, where
  mmengine would raise a bare ``URLError`` after the work directory is written.
- :func:`check_pretrained_checkpoints`: before a run, a config whose backbone starts from a
  local checkpoint that is not there fails with the converter command that writes it (configs
  under ``configs/pretrained/`` name their checkpoint ``checkpoints/<format>_r<depth>.pth``).
- :func:`attention_missing_from` / :func:`report_attention_missing`: after a backbone loaded a
  pretrained checkpoint, one log line per module type whose modules the checkpoint held no
  weight of (they stay at their random initialisation), naming the converter formats; an
  :class:`AttentionLoadRecorder` open while mmengine loads it says which, without reading
  the checkpoint again.
- :func:`frozen_attention`: attention modules that cannot train (``requires_grad=False``).
"""
import json
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional, Tuple

import torch

# Module type (the registered class name, as in ``type='mmattn.SE'``) -> the converter formats
# whose output holds that module's weights, ResNets before ResNeXts (each format's backbone
# config: ``convert.py --list``). SimAM has no weights: its formats hold the convs it was
# trained with (its modules are never reported missing).
CONVERTER_FORMATS: Dict[str, Tuple[str, ...]] = OrderedDict([
    ('SE', ('timm-se', 'cadene-se', 'mmpretrain-se', 'timm-se-d', 'timm-se-x32x4d',
            'timm-se-x32x8d', 'timm-se-x64x4d', 'timm-se-xd-32x8d', 'cadene-se-x32x4d',
            'mmpretrain-se-x32x4d')),
    ('CBAM', ('cbam', )),
    ('BAM', ('bam', )),
    ('ECA', ('eca', )),
    ('SGE', ('sge', )),
    ('SRM', ('srm', )),
    ('FcaNet', ('fcanet', )),
    ('TripletAttention', ('triplet', 'triplet-k3')),
    ('GlobalContext', ('gcnet', 'gcnet-r4')),
    ('SKConv', ('timm-sk', 'sknet', 'timm-sk-x32x4d')),
    ('SimAM', ('simam', 'simam-x32x4d')),
])

CONVERTER = 'tools/model_converters/convert.py'
# configs/pretrained/ names each converted checkpoint after its format and depth
_CHECKPOINT_NAME = re.compile(r'^(?P<format>[A-Za-z0-9][\w.-]*?)_r(?P<depth>\d+)\.pth$')


class CheckpointNotFoundError(FileNotFoundError):
    """A config's backbone starts from a local checkpoint that does not exist."""


def converter_formats() -> List[str]:
    """Every format the table names, in table order, without repeats."""
    seen = OrderedDict()
    for formats in CONVERTER_FORMATS.values():
        for fmt in formats:
            seen[fmt] = None
    return list(seen)


def format_of_checkpoint(path: str) -> Optional[str]:
    """The converter format that writes ``path`` (``<format>_r<depth>.pth``), or None."""
    match = _CHECKPOINT_NAME.match(osp.basename(str(path)))
    if match and match.group('format') in converter_formats():
        return match.group('format')
    return None


def converter_command(fmt: str, dst: str, src: str = 'SRC') -> str:
    return f'python {CONVERTER} {fmt} {src} {dst}'


def _is_local(path) -> bool:
    # torchvision://, open-mmlab://, mmcls://, http(s)://, s3://, ... are loaded by mmengine's
    # CheckpointLoader from elsewhere; only plain paths can be checked before the run
    return isinstance(path, str) and '://' not in path


def pretrained_inits(init_cfg) -> List[dict]:
    """The ``type='Pretrained'`` entries of an ``init_cfg`` (a dict, a list or None)."""
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    return [c for c in cfgs if isinstance(c, dict) and c.get('type') == 'Pretrained'
            and c.get('checkpoint')]


def _init_cfgs(node, where='model'):
    """(where, Pretrained init_cfg) for every init_cfg in a model config, depth first;
    ``where`` is the init_cfg's dotted key as ``--cfg-options`` takes it (list items by index,
    e.g. ``model.neck.0.init_cfg.1``)."""
    if isinstance(node, dict):
        init_cfg = node.get('init_cfg')
        if isinstance(init_cfg, (list, tuple)):
            for i, item in enumerate(init_cfg):
                for cfg in pretrained_inits(item):
                    yield f'{where}.init_cfg.{i}', cfg
        else:
            for cfg in pretrained_inits(init_cfg):
                yield f'{where}.init_cfg', cfg
        for key, value in node.items():
            if key != 'init_cfg':
                yield from _init_cfgs(value, f'{where}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _init_cfgs(value, f'{where}.{i}')


def check_pretrained_checkpoints(cfg) -> None:
    """Raise :class:`CheckpointNotFoundError` for a local ``Pretrained`` checkpoint that is not
    there, with the converter command that writes it where its name says which.

    Only the model's ``init_cfg`` entries are checked (``load_from`` and ``--resume`` have
    their own messages in mmengine).
    """
    model = cfg.get('model') if hasattr(cfg, 'get') else None
    if not model:
        return
    for where, init in _init_cfgs(model):
        path = init['checkpoint']
        if not _is_local(path) or osp.exists(path):
            continue
        fmt = format_of_checkpoint(path)
        if fmt is not None:
            modules = [m for m, fmts in CONVERTER_FORMATS.items() if fmt in fmts]
            hint = (f'It is a released checkpoint with {", ".join(modules)} weights, converted by '
                    f'`{converter_command(fmt, path)}`, where SRC is the released file '
                    f'(README, "Starting from the authors\' ImageNet weights", says where '
                    f'each is published; `python {CONVERTER} --list` prints every format).')
        else:
            hint = ('Set its path with --cfg-options, or write it there '
                    f'(`python {CONVERTER} --list` prints the formats the converters read).')
        raise CheckpointNotFoundError(f'{where}: no checkpoint at {path!r}. {hint}')


# -- torchvision:// weights --------------------------------------------------------------------

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
    found = [(f'{where}.checkpoint', init['checkpoint'])
             for where, init in _init_cfgs(cfg.get('model'))
             if _is_torchvision(init['checkpoint'])]
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


class LibraryUnavailableError(ImportError):
    """A config's library (its ``default_scope``) cannot be imported here."""


def check_library_available(cfg, config_name: Optional[str] = None) -> None:
    """Raise :class:`LibraryUnavailableError` if the library of ``cfg``'s ``default_scope``
    does not import; mmengine would fail on the first model or dataset it builds, with the
    import's traceback. mmpretrain 1.2 imports torchvision in its datasets, metrics and model
    utilities, so it needs a torchvision that works with the installed torch."""
    scope = cfg.get('default_scope')
    if scope != 'mmpretrain':
        return
    try:
        import mmpretrain.datasets  # noqa: F401
        import mmpretrain.evaluation  # noqa: F401
        import mmpretrain.models  # noqa: F401
    except Exception as e:  # noqa: BLE001 (any failure means the runner cannot build the config)
        import torch
        name = config_name or getattr(cfg, 'filename', None) or 'the config'
        problem = torchvision_problem()
        why = (f'it imports torchvision, which does not work in this environment ({problem}). '
               f'Install the torchvision built for your torch {torch.__version__}, pinning torch '
               f'so that pip keeps it: pip install "torch=={torch.__version__}" '
               f'"{_paired_torchvision(torch.__version__)}" from the index your torch came from '
               f'(PyPI\'s torchvision wheels need PyPI\'s CUDA torch; CPU builds: '
               f'https://download.pytorch.org/whl/cpu)'
               if problem else f'{type(e).__name__}: {e}')
        raise LibraryUnavailableError(
            f'{name} is an mmpretrain config (default_scope=\'mmpretrain\'), and mmpretrain '
            f'cannot be imported: {why}.') from e


# -- after loading -------------------------------------------------------------------------------

def _attention_modules(module: torch.nn.Module):
    """(name, module) of every mmattn attention module with weights, outermost only."""
    from mmattn.models.base import BaseAttention
    inside = []
    for name, m in module.named_modules():
        if not isinstance(m, BaseAttention):
            continue
        if any(name.startswith(p + '.') for p in inside):
            continue  # a module built from other modules reports as one
        inside.append(name)
        if next(iter(m.state_dict()), None) is not None:
            yield name, m


def attention_missing_from(module: torch.nn.Module,
                           keys: Iterable[str]) -> 'OrderedDict[str, List[str]]':
    """Module type -> names of the attention modules in ``module`` that ``keys`` (a loaded
    state dict's keys, relative to ``module``) hold no tensor of. Modules of which the
    checkpoint holds some but not all tensors are left to mmengine's missing-keys message."""
    keys = set(keys)
    missing: 'OrderedDict[str, List[str]]' = OrderedDict()
    for name, m in _attention_modules(module):
        if not any(f'{name}.{k}' in keys for k in m.state_dict()):
            missing.setdefault(type(m).__name__, []).append(name)
    return missing


def _attention_not_filled(module: torch.nn.Module,
                          filled: Iterable[str]) -> 'OrderedDict[str, List[str]]':
    """As :func:`attention_missing_from`, from the names of the modules a load filled."""
    filled = set(filled)
    missing: 'OrderedDict[str, List[str]]' = OrderedDict()
    for name, m in _attention_modules(module):
        if name not in filled:
            missing.setdefault(type(m).__name__, []).append(name)
    return missing


def _short_list(names: List[str], limit: int = 6) -> str:
    if len(names) <= limit:
        return ', '.join(names)
    return ', '.join(names[:limit]) + f', ... ({len(names) - limit} more)'


def describe_attention_missing(missing: Dict[str, List[str]], checkpoint: str,
                               owner: str = '') -> List[str]:
    """One line per module type (see :func:`attention_missing_from`)."""
    lines = []
    prefix = f'{owner}.' if owner else ''
    for type_name, names in missing.items():
        formats = CONVERTER_FORMATS.get(type_name)
        if formats:
            which = formats[0] if len(formats) == 1 else 'one of ' + ', '.join(formats)
            fix = (f'a checkpoint holding them comes from `python {CONVERTER} FORMAT SRC DST` '
                   f'with FORMAT {which} (`--list` says which backbone each fills)')
        else:
            fix = 'no converter writes their weights (none were released for a ResNet)'
        lines.append(
            f'mmattn: the pretrained checkpoint {checkpoint!r} holds no weights of '
            f'{len(names)} {type_name} module(s), left at their random initialisation: '
            f'{_short_list([prefix + n for n in names])}; {fix}.')
    return lines


class AttentionLoadRecorder:
    """While open (a context manager, or :meth:`open`/:meth:`close`), record which attention
    modules of ``module`` each state-dict load into ``module`` fills.

    mmengine's ``PretrainedInit`` loads through its ``load_state_dict``, which calls every
    submodule's ``_load_from_state_dict`` with the keys meant for it, after mmengine's own key
    handling (``state_dict`` unpacked, ``module.`` or ``prefix`` stripped), so the pre-hooks
    here see exactly what mmengine loaded, without a second read of the checkpoint. A module
    counts as filled when the load holds any of its tensors, whatever their values (a gate
    the checkpoint holds at zero is filled, as its zero-initialised copy is not).

    ``loads`` is one set of module names (relative to ``module``) per load into ``module``
    itself, in order: loads into a submodule alone (its own ``init_cfg``) are not counted.
    """

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.loads: List[set] = []
        self._current: Optional[set] = None
        self._handles = []

    def open(self) -> 'AttentionLoadRecorder':
        if not self._handles:
            self._handles.append(self.module.register_load_state_dict_pre_hook(self._start))
            self._handles.append(self.module.register_load_state_dict_post_hook(self._end))
            for name, m in _attention_modules(self.module):
                self._handles.append(m.register_load_state_dict_pre_hook(
                    self._seen_hook(name, tuple(m.state_dict()))))
        return self

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._current = None

    __enter__ = open

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _start(self, module, state_dict, prefix, *args) -> None:
        self._current = set()
        self.loads.append(self._current)

    def _end(self, module, incompatible_keys) -> None:
        self._current = None

    def _seen_hook(self, name: str, keys: Tuple[str, ...]):
        def seen(module, state_dict, prefix, *args) -> None:
            if self._current is not None and any(prefix + k in state_dict for k in keys):
                self._current.add(name)
        return seen


def checkpoint_keys(init: dict) -> List[str]:
    """The state-dict keys the ``Pretrained`` init ``init`` loads, as mmengine's
    ``PretrainedInit`` names them (``prefix`` stripped; ``module.`` stripped)."""
    from mmengine.runner.checkpoint import _load_checkpoint
    ckpt = _load_checkpoint(init['checkpoint'], map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    prefix = init.get('prefix')
    keys = []
    for key in state:
        if prefix is not None:
            p = prefix if prefix.endswith('.') else prefix + '.'
            if not key.startswith(p):
                continue
            key = key[len(p):]
        else:
            key = re.sub(r'^module\.', '', key)
        keys.append(key)
    return keys


def report_attention_missing(module: torch.nn.Module, owner: str = '', logger=None,
                             loads: Optional[List[set]] = None) -> List[str]:
    """Log (warning) the attention modules of ``module`` its ``Pretrained`` init_cfg left at
    their random initialisation, one line per module type; return the lines.

    ``loads``: what an :class:`AttentionLoadRecorder` saw while ``module`` was initialised,
    one load per ``Pretrained`` entry of its ``init_cfg``, in order (mmengine runs them in
    that order). Without it, or when the counts differ (the init ran outside the recorder),
    each checkpoint's keys are read once more (mmengine's init does not say what it loaded).
    """
    from mmengine.logging import MMLogger, print_log
    lines = []
    inits = pretrained_inits(getattr(module, 'init_cfg', None))
    if loads is not None and len(loads) != len(inits):
        loads = None
    for i, init in enumerate(inits):
        if not any(True for _ in _attention_modules(module)):
            break
        if loads is not None:
            missing = _attention_not_filled(module, loads[i])
        else:
            try:
                keys = checkpoint_keys(init)
            except Exception as err:  # noqa: B902  (mmengine already reported or raised)
                print_log(f'mmattn: could not read {init["checkpoint"]!r} to check its '
                          f'attention weights: {err}', logger=logger or 'current', level=30)
                continue
            missing = attention_missing_from(module, keys)
        lines += describe_attention_missing(missing, init['checkpoint'], owner)
    logger = logger or MMLogger.get_current_instance()
    for line in lines:
        print_log(line, logger=logger, level=30)
    return lines


def frozen_attention(module: torch.nn.Module) -> 'OrderedDict[str, List[str]]':
    """Module type -> names of the attention modules in ``module`` with a parameter that
    cannot train, leaving out those a backbone froze because its config asked
    (``freeze_plugins=True``)."""
    asked = set()
    for name, m in module.named_modules():
        if getattr(m, 'freeze_plugins', False) and hasattr(m, 'stage_attention_modules'):
            for i in range(1, max(m.frozen_stages, 0) + 1):
                # a stage plugin is a Sequential of attention modules
                asked.update(id(x) for a in m.stage_attention_modules(i) for x in a.modules())
    frozen: 'OrderedDict[str, List[str]]' = OrderedDict()
    for name, m in _attention_modules(module):
        if id(m) in asked:
            continue
        if any(not p.requires_grad for p in m.parameters()):
            frozen.setdefault(type(m).__name__, []).append(name)
    return frozen


# -- every checkpoint mmengine fetches by a URL scheme -------------------------------------------

# how long one attempt to download may wait for the server before it counts as unreachable
DOWNLOAD_TIMEOUT_S = 30


def find_remote_checkpoints(cfg) -> List[Tuple[str, str]]:
    """``(key, checkpoint)`` for every checkpoint of the config that mmengine's
    ``CheckpointLoader`` fetches through a URL scheme (``torchvision://``, ``open-mmlab://``,
    ``mmcls://``, ``http(s)://``, ``s3://``, ...): each ``Pretrained`` ``init_cfg`` under
    ``model``, every ``pretrained`` setting in it (mmseg's models hand theirs to the backbone
    as such an ``init_cfg``), and ``load_from``. ``key`` is the dotted path ``--cfg-options``
    takes."""
    found = [(f'{where}.checkpoint', init['checkpoint'])
             for where, init in _init_cfgs(cfg.get('model'))
             if not _is_local(init['checkpoint'])]
    found += [(key, value) for key, value in _pretrained_keys(cfg.get('model'), 'model')
              if not _is_local(value)]
    load_from = cfg.get('load_from')
    if isinstance(load_from, str) and not _is_local(load_from):
        found.append(('load_from', load_from))
    return found


def _pretrained_keys(node, where):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'pretrained' and isinstance(value, str):
                yield f'{where}.pretrained', value
            elif key != 'init_cfg':
                yield from _pretrained_keys(value, f'{where}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _pretrained_keys(value, f'{where}.{i}')


def _scheme_of(checkpoint: str) -> Optional[str]:
    """The prefix of mmengine's ``CheckpointLoader`` that serves ``checkpoint``."""
    from mmengine.runner.checkpoint import CheckpointLoader
    for prefix in CheckpointLoader._schemes:  # longest first, as mmengine matches them
        if prefix and re.match(prefix, checkpoint) is not None:
            return prefix
    return None


def resolve_checkpoint_url(checkpoint: str) -> str:
    """The address (or file) mmengine's ``CheckpointLoader`` reads ``checkpoint`` from, looked
    up in the tables mmengine itself uses; ``KeyError`` for a name its table lacks."""
    from mmengine.runner import checkpoint as mmckpt
    scheme = _scheme_of(checkpoint)
    name = checkpoint[len(scheme):] if scheme else checkpoint
    if scheme in ('torchvision://', 'modelzoo://'):
        table = mmckpt.get_torchvision_models()
    elif scheme in ('open-mmlab://', 'openmmlab://'):
        table = mmckpt.get_external_models()
        name = mmckpt.get_deprecated_model_names().get(name, name)
    elif scheme == 'mmcls://':
        table = mmckpt.get_mmcls_models()
    else:
        return checkpoint
    if name not in table:
        import difflib
        close = difflib.get_close_matches(name, list(table), n=3, cutoff=0.6)
        raise KeyError(f'{name!r} is not a name mmengine knows for {scheme}'
                       + (f' (did you mean {", ".join(scheme + c for c in close)}?)'
                          if close else ''))
    url = table[name]
    local = not url.startswith(('http://', 'https://'))
    if scheme in ('open-mmlab://', 'openmmlab://') and local:
        return osp.join(mmckpt._get_mmengine_home(), url)  # a file mmengine keeps locally
    return url


def cached_checkpoint_path(url: str) -> str:
    """Where mmengine's ``load_from_http`` (torch's ``load_state_dict_from_url``) keeps the
    download of ``url``: ``$TORCH_HOME/hub/checkpoints/<file name>``."""
    from urllib.parse import urlparse
    return osp.join(torch.hub.get_dir(), 'checkpoints', osp.basename(urlparse(url).path))


def _fetch(url: str, dst: str) -> None:
    """Download ``url`` to ``dst`` as torch's hub does (a temporary file renamed when
    complete), waiting at most :data:`DOWNLOAD_TIMEOUT_S` for the server at a time."""
    import socket
    folder = osp.dirname(dst)
    created = not osp.isdir(folder)
    os.makedirs(folder, exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        torch.hub.download_url_to_file(url, dst, progress=False)
    except BaseException:
        if created and not os.listdir(folder):
            os.rmdir(folder)  # leave the cache as it was
        raise
    finally:
        socket.setdefaulttimeout(previous)


def _problem_with(checkpoint: str) -> Tuple[Optional[str], Optional[str]]:
    """``(problem, where)``: why mmengine could not load ``checkpoint`` now (None if it can),
    and the address it resolves to. A download it needs is made here, into the cache where
    mmengine looks for it."""
    from .checkpoint import is_complete
    scheme = _scheme_of(checkpoint)
    try:
        where = resolve_checkpoint_url(checkpoint)
    except KeyError as err:
        return str(err.args[0]), None
    except Exception as err:  # noqa: BLE001 (mmengine's table lookups import torchvision)
        return f'{type(err).__name__}: {err}', None
    if scheme in ('pavi://', ):
        from .checkpoint import first_line
        try:
            import pavi  # noqa: F401
        except ImportError as err:
            return f'mmengine loads pavi:// checkpoints through pavi ({first_line(err)})', None
        return None, None
    if where.startswith(('http://', 'https://')):
        cached = cached_checkpoint_path(where)
        if osp.exists(cached) and is_complete(cached):
            return None, where
        try:
            print(f'mmattn: downloading {where} to {cached} (the cache mmengine reads it '
                  f'from), before anything is written', flush=True)
            _fetch(where, cached)
        except Exception as err:  # noqa: BLE001 (URLError, HTTPError, timeouts, ...)
            return f'it cannot be downloaded ({type(err).__name__}: {err})', where
        return None, where
    if where != checkpoint:  # a file mmengine keeps locally for an open-mmlab:// name
        return (None if osp.isfile(where) else f'{where} does not exist'), where
    # any other scheme (s3://, petrel://, one registered by another package): load it as
    # mmengine would, once, now
    from mmengine.runner.checkpoint import CheckpointLoader
    try:
        CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu', logger='silent')
    except Exception as err:  # noqa: BLE001
        from .checkpoint import first_line
        return f'mmengine cannot load it ({type(err).__name__}: {first_line(err)})', None
    return None, None


def check_remote_checkpoints(cfg, config_name: Optional[str] = None) -> None:
    """Raise :class:`PretrainedUnavailableError` for a checkpoint of the config that mmengine
    would fetch by a URL scheme and cannot (no network, a name its tables lack, a missing
    client); the message names the config key and the ways on: the file downloaded and
    passed, the cache it goes in, or the key set to None. A download the run needs is made
    here, so that training loads it from the cache."""
    wanted = find_remote_checkpoints(cfg)
    problems = []
    for key, checkpoint in wanted:
        problem, where = _problem_with(checkpoint)
        if problem is not None:
            problems.append((key, checkpoint, problem, where))
    if not problems:
        return
    name = config_name or getattr(cfg, 'filename', None) or 'the config'
    lines = [f'{name} starts from weights that cannot be loaded here:']
    for key, checkpoint, problem, where in problems:
        lines.append(f'  {key} = {checkpoint!r}'
                     + (f' ({where})' if where and where != checkpoint else '')
                     + f': {problem}')
    lines.append('Either:')
    for key, checkpoint, problem, where in problems:
        url = where if where and where.startswith(('http://', 'https://')) else None
        local = osp.basename(url) if url else 'FILE.pth'
        if url:
            lines.append(f'  - download {url} into {osp.dirname(cached_checkpoint_path(url))}'
                         f'/ (where mmengine looks first: the config then works unchanged);')
        # mmengine's mmcls:// loader keeps the weights under backbone. without the prefix
        prefix = (f' {key.rsplit(".checkpoint", 1)[0]}.prefix=backbone.'
                  if checkpoint.startswith('mmcls://') and key.endswith('init_cfg.checkpoint')
                  else '')
        lines.append(f'  - or {"download it and " if url else ""}pass --cfg-options '
                     f'{key}=PATH/{local}{prefix};')
    # an init_cfg that is a list item cannot be dropped by --cfg-options: name only dicts
    drop = sorted({key.rsplit('.checkpoint', 1)[0] if key.endswith('init_cfg.checkpoint')
                   else key for key, *_ in problems
                   if key.endswith(('init_cfg.checkpoint', '.pretrained')) or key == 'load_from'})
    if drop:
        lines.append('  - or start without them (from scratch, or when --resume or another '
                     'checkpoint brings every weight anyway): --cfg-options '
                     + ' '.join(f'{k}=None' for k in drop) + '.')
    raise PretrainedUnavailableError('\n'.join(lines))
