"""Parameters and FLOPs of a model or an mmdet/mmseg config, and the share of mmattn's modules.

Everything is counted by ``mmengine.analysis`` (``FlopAnalyzer``, ``parameter_count``), the
counter behind mmdet's and mmseg's ``tools/analysis_tools/get_flops.py``, with its conventions
(fvcore's):

- one FLOP is one multiply-add. Convolutions, linear layers, ``matmul``/``bmm``/``einsum``,
  batch/group/layer/instance norms, upsampling and adaptive average pooling are counted;
  element-wise operators (activations, sigmoid and softmax, gate products, additions) and
  reductions such as ``mean`` are not. What was seen but not counted is returned by operator
  name (``Complexity.uncounted``), overall and per attention module, so a report can say so.
- The model is traced with ``torch.jit``. While tracing, mmattn's CPU fast paths step aside
  (:func:`mmattn.models.layers.use_fast_path` is false while a graph is captured, so the
  autograd Functions of :mod:`mmattn.models.layers.cpu_kernels` never enter the graph), and
  the lean softmax / concatenation attention of :mod:`mmattn.models.layers.attention` takes
  the explicit formula, whose two matrix products are the ones the lean path computes block
  by block. So no ``prim::PythonOp`` is left uncounted; :func:`analyze_model` reports any
  that appear.

One correction to mmengine 0.10's handles: its ``aten::matmul`` count is
``prod(a.shape) * b.shape[-1]``, which misses the broadcast batch dimensions of the second
operand: ``P @ x`` with P (oh, H) and x (N, C, H, W), the products of the ONNX-safe pooling
(:func:`mmattn.models.layers.pool_matrix`), counts oh*H*W instead of N*C*oh*H*W.
:func:`matmul_flop_jit` counts broadcast products correctly and is registered on every analyzer
made here.
"""
import hashlib
import importlib
import inspect
import os
import os.path as osp
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from math import prod
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

SCOPES = ('mmdet', 'mmseg')


# -- counting -----------------------------------------------------------------------------------
def _shape(value) -> List[int]:
    return list(value.type().sizes())


def matmul_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """Multiply-adds of ``torch.matmul(a, b)`` with numpy broadcasting of the batch dims."""
    a, b = _shape(inputs[0]), _shape(inputs[1])
    if len(a) == 1:
        a = [1, a[0]]
    if len(b) == 1:
        b = [b[0], 1]
    if a[-1] != b[-2]:
        raise ValueError(f'matmul_flop_jit: inner dimensions differ, {a} @ {b}')
    batch = torch.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2]))
    return prod(batch) * a[-2] * a[-1] * b[-1]


FLOP_HANDLES = {'aten::matmul': matmul_flop_jit}


def attention_modules(model: nn.Module) -> Dict[str, nn.Module]:
    """The outermost mmattn attention modules of ``model``, by qualified name (SCSE's inner
    parts, or the modules inside a head, are not listed separately from their owner unless
    the owner is not an attention module itself)."""
    from mmattn.models.base import BaseAttention
    found: Dict[str, nn.Module] = {}
    for name, module in model.named_modules():
        if isinstance(module, BaseAttention) and not any(
                name.startswith(owner + '.') for owner in found):
            found[name] = module
    return found


@dataclass
class Complexity:
    """What :func:`analyze_model` measured.

    Attributes:
        flops: multiply-adds of one forward pass of the given inputs.
        params: parameters (buffers such as BN statistics not counted; shared ones once).
        input_shape: shape of the (first) input tensor.
        attention: per attention class name: ``instances`` (qualified names), ``params``,
            ``flops`` and ``uncounted`` (operator -> occurrences inside those modules).
        uncounted: operator -> occurrences the counter saw but has no handle for, whole model.
        uncalled: attention modules that the forward pass never called (a placement bug).
        table: mmengine's per-module table (``show_table``) and/or arch string.
    """
    flops: int
    params: int
    input_shape: Tuple[int, ...]
    attention: Dict[str, dict] = field(default_factory=dict)
    uncounted: Dict[str, int] = field(default_factory=dict)
    uncalled: List[str] = field(default_factory=list)
    table: str = ''

    @property
    def attention_flops(self) -> int:
        return sum(v['flops'] for v in self.attention.values())

    @property
    def attention_params(self) -> int:
        return sum(v['params'] for v in self.attention.values())

    def to_dict(self) -> dict:
        return dict(flops=self.flops, params=self.params, input_shape=list(self.input_shape),
                    attention=self.attention, uncounted=self.uncounted, uncalled=self.uncalled)

    @classmethod
    def from_dict(cls, d: dict) -> 'Complexity':
        return cls(flops=d['flops'], params=d['params'], input_shape=tuple(d['input_shape']),
                   attention=d['attention'], uncounted=d['uncounted'], uncalled=d['uncalled'])


def analyze_model(model: nn.Module, inputs, show_table: bool = False, show_arch: bool = False,
                  max_depth: int = 3) -> Complexity:
    """Count ``model(*inputs)`` with mmengine's FlopAnalyzer (see the module docstring).

    ``inputs`` is a tensor or a tuple of positional inputs; the model is counted as it is
    (call ``.eval()`` first for inference FLOPs).
    """
    from mmengine.analysis import FlopAnalyzer, parameter_count
    from mmengine.analysis.print_helper import complexity_stats_str, complexity_stats_table

    if isinstance(inputs, torch.Tensor):
        inputs = (inputs, )
    analyzer = FlopAnalyzer(model, inputs).set_op_handle(**FLOP_HANDLES)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    with torch.no_grad():
        total = analyzer.total()
    by_module = analyzer.by_module()
    params = parameter_count(model)
    uncalled = analyzer.uncalled_modules()

    per_class: Dict[str, dict] = {}
    attn = attention_modules(model)
    for name, module in attn.items():
        entry = per_class.setdefault(
            type(module).__name__, dict(instances=[], params=0, flops=0, uncounted={}))
        entry['instances'].append(name)
        entry['params'] += sum(p.numel() for p in module.parameters())
        entry['flops'] += int(by_module.get(name, 0))
        ops = Counter(entry['uncounted'])
        ops.update(analyzer.unsupported_ops(name))
        entry['uncounted'] = dict(sorted(ops.items()))
    table = ''
    if show_table:
        table += complexity_stats_table(analyzer, max_depth=max_depth, show_param_shapes=False)
    if show_arch:
        table += '\n' + complexity_stats_str(analyzer)
    first = inputs[0]
    return Complexity(
        flops=int(total), params=int(params['']),
        input_shape=tuple(first.shape) if isinstance(first, torch.Tensor) else (),
        attention=per_class, uncounted=dict(sorted(analyzer.unsupported_ops().items())),
        uncalled=sorted(n for n in uncalled if n in attn), table=table)


# -- configs ----------------------------------------------------------------------------------
class ConfigError(ValueError):
    """A config that the analysis tools cannot serve, with the reason."""


def load_config(path: str, cfg_options: Optional[dict] = None):
    """``Config.fromfile`` (which imports ``custom_imports``) with a clear error for a bad
    path; returns ``(cfg, scope)`` where scope is 'mmdet' or 'mmseg'."""
    from mmengine.config import Config
    if '::' in path:  # a config shipped by a package, e.g. 'mmdet::faster_rcnn/...py'
        cfg = Config.fromstring(f'_base_ = {path!r}\n', '.py')
    elif not osp.isfile(path):
        raise ConfigError(f'config file not found: {path!r}')
    else:
        cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg, config_scope(cfg)


def config_scope(cfg) -> str:
    """'mmdet' or 'mmseg', from the config's ``default_scope`` (set by their base configs)."""
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        raise ConfigError(
            f'{cfg.filename}: default_scope is {scope!r}; the analysis tools serve mmdet and '
            'mmseg configs (inherit one of their configs through _base_)')
    return scope


def build_model(cfg, scope: Optional[str] = None, device: str = 'cpu') -> nn.Module:
    """The config's model in eval mode on ``device``, SyncBN replaced by BN (one process) and
    mmseg's auxiliary head dropped (it only serves training; mmseg's get_flops does the same).
    """
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import DefaultScope
    scope = scope or config_scope(cfg)
    registry = importlib.import_module(f'{scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(cfg.model)
    if scope == 'mmseg' and getattr(model, 'auxiliary_head', None) is not None:
        model.auxiliary_head = None
    model = revert_sync_batchnorm(model)
    return model.to(device).eval()


def parse_shape(shape: Optional[Sequence[int]]) -> Optional[Tuple[int, int]]:
    """A tool's ``--shape`` (S, or H W) as (H, W); None stays None."""
    if shape is None:
        return None
    shape = list(shape)
    if len(shape) == 1:
        shape = shape * 2
    if len(shape) != 2 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ConfigError(f'--shape takes H W or one size S (positive ints), got {shape}')
    return tuple(shape)


def random_batch(scope: str, shape: Sequence[int], batch_size: int = 1, seed: int = 0) -> dict:
    """A data batch as a dataloader of the scope gives it: uint8 (3, H, W) images and data
    samples whose metainfo says the image was not resized (scale factor 1)."""
    if len(shape) != 2 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ConfigError(f'input shape must be two positive ints (H, W), got {tuple(shape)!r}')
    h, w = shape
    gen = torch.Generator().manual_seed(seed)
    meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w), scale_factor=(1.0, 1.0),
                img_path=f'random_{h}x{w}.png')
    if scope == 'mmdet':
        from mmdet.structures import DetDataSample as Sample
    else:
        from mmseg.structures import SegDataSample as Sample
    return dict(inputs=[torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen)
                        for _ in range(batch_size)],
                data_samples=[Sample(metainfo=dict(meta)) for _ in range(batch_size)])


def dataloader_batches(cfg, scope: str, num: int, split: str = 'test'):
    """Yield up to ``num`` single-image batches of the config's test (or val) dataloader;
    :class:`mmattn.utils.DatasetNotFoundError` names the missing data first."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    from .data_check import check_dataset_paths
    key = f'{split}_dataloader'
    loader_cfg = cfg.get(key)
    if not loader_cfg:
        raise ConfigError(f'{cfg.filename} has no {key}')
    check_dataset_paths(cfg, loaders=(key, ))
    loader_cfg = loader_cfg.copy()
    loader_cfg.update(batch_size=1, num_workers=0, persistent_workers=False)
    with DefaultScope.overwrite_default_scope(scope):
        loader = Runner.build_dataloader(loader_cfg)
        for i, batch in enumerate(loader):
            if i == num:
                break
            yield batch


def analyze_config(cfg, batch: dict, scope: Optional[str] = None, model: nn.Module = None,
                   device: str = 'cpu', show_table: bool = False, show_arch: bool = False,
                   max_depth: int = 3) -> Complexity:
    """Count the config's model on one data batch, as mmdet's and mmseg's get_flops do: the
    data preprocessor pads/normalises the batch, then the model's ``mode='tensor'`` forward
    (detectors: backbone, neck, RPN with its proposals, RoI head; segmentors: backbone and
    decode head) is traced."""
    scope = scope or config_scope(cfg)
    if model is None:
        model = build_model(cfg, scope, device)
    with torch.no_grad():
        data = model.data_preprocessor(batch, False)
    forward = partial(model.forward, data_samples=data['data_samples'], mode='tensor')
    model.forward = forward  # the analyzer calls model(inputs); mmdet's get_flops does this
    try:
        return analyze_model(model, (data['inputs'], ), show_table=show_table,
                             show_arch=show_arch, max_depth=max_depth)
    finally:
        del model.forward


# -- caching ------------------------------------------------------------------------------------
def _versions():
    from importlib.metadata import PackageNotFoundError, version
    found = []
    for pkg in ('torch', 'mmengine', 'mmcv', 'mmdet', 'mmsegmentation'):
        try:
            found.append(f'{pkg}=={version(pkg)}')
        except PackageNotFoundError:
            found.append(f'{pkg} absent')
    return found


def _hash_files(h, files):
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    for f in sorted(set(files)):
        h.update(osp.relpath(f, root).encode())
        with open(f, 'rb') as fh:
            h.update(fh.read())


def _mmattn_sources(model: nn.Module) -> List[str]:
    """Source files of the mmattn code a model runs: the modules defining its classes (and
    their bases), and, transitively, every mmattn module whose functions or classes those
    import (``from ..utils import reduced_channels`` makes utils.py one)."""
    import sys
    todo = {c.__module__ for m in model.modules() for c in type(m).__mro__}
    todo = {n for n in todo if n.startswith('mmattn.')}
    seen = set()
    while todo:
        name = todo.pop()
        seen.add(name)
        module = sys.modules.get(name)
        for value in vars(module).values() if module else ():
            dep = value.__name__ if inspect.ismodule(value) else getattr(value, '__module__',
                                                                          None)
            if isinstance(dep, str) and dep.startswith('mmattn.') and dep not in seen:
                todo.add(dep)
    return sorted(f for f in (getattr(sys.modules.get(n), '__file__', None) for n in seen)
                  if f)


def source_fingerprint(model: Optional[nn.Module] = None) -> str:
    """Hash of what a count of ``model`` depends on besides its config and input: the
    versions of torch and the OpenMMLab packages, this file, and the sources of the mmattn
    code the model runs (:func:`_mmattn_sources`). Editing one module's file makes only the
    counts of models containing it stale. Without a model: every mmattn/models source.
    """
    h = hashlib.sha256(' '.join(_versions()).encode())
    files = [osp.abspath(__file__)]
    if model is None:
        models_dir = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'models')
        files += [osp.join(d, f) for d, _, names in os.walk(models_dir) for f in names
                  if f.endswith('.py')]
    else:
        files += _mmattn_sources(model)
    _hash_files(h, files)
    return h.hexdigest()[:16]
