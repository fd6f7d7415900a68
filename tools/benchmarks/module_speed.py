"""Forward and backward time and peak memory of every attention module, on the CPU or a GPU.

For every module registered in mmattn (``--modules`` selects some), at (8, 256, 56, 56) float32
by default (``--shape``), in training mode (batch statistics, autograd recording), up to five
implementations are measured, all with the same weights:

- ``mmattn``: ours, built by ``build_attention(name, C)`` with its defaults;
- ``plain``: the same module with the CPU fast paths switched off
  (``mmattn.models.layers.fast_paths(False)``), i.e. its formula in plain PyTorch. On a GPU the
  switch changes nothing (the fast paths are the CPU's), so there this row repeats ours;
- ``timm``: ``timm.layers``' module where timm has one (SE, cSE as SE with r = 2, ECA,
  Gather-Excite theta-minus, GC, coordinate attention, CBAM, SK);
- ``mmcv``: mmcv's ``ContextBlock`` (GC), ``NonLocal2d`` (Non-local) and
  ``ops.CrissCrossAttention`` (criss-cross, applied ``recurrence`` times);
- ``mmseg``: mmseg's DANet ``PAM`` and ``CAM``.

The weights are our module's, randomised (zero-initialised gates and gammas would hide the
attention path), and copied into the others. Per module, worker processes (forked from a
server that has imported torch and mmattn once, so each starts fresh without re-importing):

- **time and check**, one process for all implementations of the module: one forward +
  backward on an 8x8 map warms each up; then each runs one full-size step on the same inputs,
  dropout masks and output gradient as ours, and the largest difference of the outputs, and
  of the input gradients, relative to ours' largest magnitude is printed (float32 rounding
  gives about 1e-6, more where a softmax over thousands of sharp logits amplifies it). The
  formulas are compared in float64, free of that rounding: every implementation's output and
  input gradients at a (2, C, 12, 12) map, relative to ours; more than 1e-9 there is flagged,
  and so is more than 1e-4 at full size in float32 where the float64 check could not run.
  ``plain`` (ours with the CPU fast paths switched off) is timed only for a module whose
  forward takes one of them on this device; elsewhere it would run the very same code.
  Then up to ``--repeat`` rounds of forward
  calls (graph recorded, as in training), then of forward + backward calls (gradients set to
  None between calls, as ``zero_grad`` does), each round calling every implementation once in
  a rotating order, so that a change of the machine's load hits them alike; a loop stops after
  ``--budget`` seconds per implementation (at least 3 rounds). Min and median;
- **one pass**, timed between those calls in the same process: ``x * s`` with ``s`` of shape
  (N, C, 1, 1), no autograd: one read and one write of a full-size tensor, the floor for
  anything that returns a new gated map. The light gates (SE, ECA, SimAM, Gather-Excite
  theta-minus, cSE) are memory-bound, so their times are also printed as multiples of it
  (min over min);
- **peak memory**, a fresh process per implementation: after the warm-up, the first
  full-size forward + backward, as the growth of the process's peak resident memory
  (``VmHWM`` in /proc/self/status, reset to the current size first where the kernel allows
  it, else its value once the inputs are allocated).

The summary lists where ours is slower than the plain formula by more than 5% (min times).
On a machine shared with other work, heavy modules get only 3 rounds: compare ratios within
about 10% with care and rerun the module alone (``--modules``) with a larger ``--budget``.

On a GPU (``--device cuda``) every timed call is bracketed by ``torch.cuda.synchronize()``
(min and median of the rounds, after the warm-up and the full-size check step), and the peak
memory is the growth of ``torch.cuda.max_memory_allocated`` over the first full-size step
after ``reset_peak_memory_stats``, still one fresh process per implementation
(:mod:`mmattn.utils.memory`). ``--amp fp16|bf16`` runs every forward under ``torch.autocast``
of that dtype (backward outside it, as in training); the check then compares every
implementation, ours included, with ours in float32, and flags ours only where it loses more
precision than the plain formula does. ``--skip-memory`` leaves out the memory processes.
Every run prints the device, torch and CUDA versions, the precision and threads first.

Usage::

    OMP_NUM_THREADS=1 python tools/benchmarks/module_speed.py --threads 1
    python tools/benchmarks/module_speed.py --modules SE ECA --shape 2 64 28 28 --repeat 3
    python tools/benchmarks/module_speed.py --timm-path /tmp/timm_pkg   # an unpacked timm wheel
    python tools/benchmarks/module_speed.py --device cuda --amp bf16 --impls mmattn mmcv mmseg

timm: ``import timm`` imports torchvision; the layers measured here mostly do not. If timm
cannot be imported as a package, its layer files are loaded one by one from the installed
package or from ``--timm-path`` (a directory holding ``timm/``, e.g. an unpacked wheel), and a
layer whose file still needs torchvision is reported as unavailable with the import error.
"""
import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import statistics
import sys
import time
import types

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
IMPLS = ('mmattn', 'plain', 'timm', 'mmcv', 'mmseg')
# memory-bound gates whose times are also printed in passes (Gather-Excite's default variant is
# theta-minus with the global extent: x * sigmoid(GAP(x)))
LIGHT_GATES = ('SE', 'ECA', 'SimAM', 'GatherExcite', 'CSE')
MISMATCH = 1e-4  # relative difference from ours above which another implementation is flagged
F64_MISMATCH = 1e-9  # the same, for the float64 check of the formulas
WARMUP_SIZE = 8
F64_SIZE = 12  # height and width of the float64 check

# -- helpers shared by the worker and the tests --------------------------------------------------
if HERE not in sys.path:
    sys.path.insert(0, HERE)
from bench_utils import (Interrupted, add_device_args, amp_dtype, autocast,  # noqa: E402
                         check_device, env_info, env_line, randomize, rel_diff,
                         stop_on_sigterm, synchronize)

# relative difference above which ours is flagged under autocast: where ours' error against
# its own float32 result exceeds twice the plain formula's at the same precision plus this
MISMATCH_AMP = 1e-3


def build_ours(name, channels, seed=0, device='cpu'):
    """Our module, randomised on the CPU (the same weights on every device), on ``device``."""
    from mmattn.models.factory import build_attention
    return randomize(build_attention(name, channels), seed=seed).to(device).train()


def example_inputs(name, shape, dtype=None, seed=1, device='cpu'):
    """The module's inputs at ``shape`` (its ``example_inputs``: OCR and AFNB take two), drawn
    on the CPU so that every device gets the same values."""
    import torch
    from mmattn.models.factory import attention_classes
    torch.manual_seed(seed)
    kwargs = {} if dtype is None else dict(dtype=dtype)
    return tuple(t.to(device) for t in
                 attention_classes()[name].example_inputs(shape[1], shape, **kwargs))


# -- timm -----------------------------------------------------------------------------------------
# our module -> (timm.layers file, builder taking (ours, timm module) -> timm layer)
def _timm_se(ours, mod):
    return mod.SEModule(ours.in_channels, rd_channels=ours.fc1.out_channels), {}


def _timm_cse(ours, mod):
    # cSE is SE with r = 2 and linear layers: timm's 1x1 convs take the same weights
    t = mod.SEModule(ours.in_channels, rd_channels=ours.fc1.out_features)
    state = ours.state_dict()
    for k in ('fc1.weight', 'fc2.weight'):
        state[k] = state[k][:, :, None, None]
    return t, state


def _timm_eca(ours, mod):
    return mod.EcaModule(kernel_size=ours.kernel_size), {}


def _timm_ge(ours, mod):
    if ours.variant != 'theta-minus' or ours.extent is not None:
        raise NotImplementedError('only theta-minus with the global extent is mapped')
    return mod.GatherExcite(ours.in_channels, extent=0, use_mlp=False, extra_params=False), {}


def _timm_gc(ours, mod):
    if ours.pooling_type != 'att' or ours.fusion_types != ('channel_add', ):
        raise NotImplementedError("only attention pooling with ('channel_add',) is mapped")
    t = mod.GlobalContext(ours.in_channels, use_attn=True, fuse_add=True, fuse_scale=False,
                          rd_channels=ours.planes)
    ln = ours.channel_add_conv[1]
    t.mlp_add.norm.eps = ln.eps  # timm's LayerNorm2d defaults to 1e-6, the authors' to 1e-5
    s = ours.state_dict()
    state = {'conv_attn.weight': s['conv_mask.weight'], 'conv_attn.bias': s['conv_mask.bias'],
             'mlp_add.fc1.weight': s['channel_add_conv.0.weight'],
             'mlp_add.fc1.bias': s['channel_add_conv.0.bias'],
             'mlp_add.norm.weight': s['channel_add_conv.1.weight'].flatten(),
             'mlp_add.norm.bias': s['channel_add_conv.1.bias'].flatten(),
             'mlp_add.fc2.weight': s['channel_add_conv.3.weight'],
             'mlp_add.fc2.bias': s['channel_add_conv.3.bias']}
    return t, state


def _timm_coord(ours, mod):
    import torch.nn as nn
    t = mod.CoordAttn(ours.in_channels, rd_channels=ours.mip, bias=True, act_layer=nn.Hardswish)
    return t, {}


def _timm_cbam(ours, mod):
    if ours.no_spatial or ours.pool_types != ('avg', 'max'):
        raise NotImplementedError('only the default CBAM is mapped')
    t = mod.CbamModule(ours.in_channels, rd_channels=ours.fc1.out_features,
                       spatial_kernel_size=ours.spatial_gate.conv.kernel_size[0], mlp_bias=True)
    s = ours.state_dict()
    state = {'channel.fc1.weight': s['fc1.weight'][:, :, None, None],
             'channel.fc1.bias': s['fc1.bias'],
             'channel.fc2.weight': s['fc2.weight'][:, :, None, None],
             'channel.fc2.bias': s['fc2.bias'],
             # timm pools [mean, max], the authors [max, mean]
             'spatial.conv.conv.weight': s['spatial_gate.conv.weight'][:, [1, 0]]}
    for k in ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'):
        state['spatial.conv.bn.' + k] = s['spatial_gate.bn.' + k]
    return t, state


def _timm_sk(ours, mod):
    if ours.num_branches != 2:
        raise NotImplementedError('only M = 2 (timm kernel_size=[3, 5]) is mapped')
    t = mod.SelectiveKernel(ours.in_channels, kernel_size=[3, 5], groups=ours.groups,
                            rd_channels=ours.attn_channels, split_input=False)
    state = {}
    for k, v in ours.state_dict().items():
        k = k.replace('branches.', 'paths.').replace('fc_reduce.conv.', 'attn.fc_reduce.')
        k = k.replace('fc_reduce.bn.', 'attn.bn.').replace('fc_select.', 'attn.fc_select.')
        state[k] = v
    return t, state


TIMM_BUILDERS = {
    'SE': ('squeeze_excite', _timm_se),
    'CSE': ('squeeze_excite', _timm_cse),
    'ECA': ('eca', _timm_eca),
    'GatherExcite': ('gather_excite', _timm_ge),
    'GlobalContext': ('global_context', _timm_gc),
    'CoordAttention': ('coord_attn', _timm_coord),
    'CBAM': ('cbam', _timm_cbam),
    'SelectiveKernel': ('selective_kernel', _timm_sk),
}


def import_timm_layer(filename, timm_path=None):
    """``timm.layers.<filename>``, importing as little of timm as possible.

    With ``timm_path`` (a directory holding ``timm/``), or when ``import timm`` fails (it
    imports torchvision), the packages ``timm`` and ``timm.layers`` are registered without
    running their ``__init__`` files, so only the layer file and what it imports are loaded.
    Raises ImportError naming the cause (e.g. a file that needs torchvision).
    """
    if timm_path is None and 'timm' not in sys.modules:
        try:
            importlib.import_module('timm.layers')  # a complete install, torchvision included
        except ImportError:
            for k in [k for k in sys.modules if k == 'timm' or k.startswith('timm.')]:
                del sys.modules[k]  # what the failed import left behind
    if 'timm.layers' not in sys.modules:
        if timm_path is not None:
            root = os.path.join(os.path.abspath(timm_path), 'timm')
        else:
            spec = importlib.util.find_spec('timm')
            if spec is None or not spec.submodule_search_locations:
                raise ImportError('timm not installed')
            root = list(spec.submodule_search_locations)[0]
        if not os.path.isdir(os.path.join(root, 'layers')):
            raise ImportError(f'no timm package at {root}')
        for pkg, path in (('timm', root), ('timm.layers', os.path.join(root, 'layers'))):
            m = types.ModuleType(pkg)
            m.__path__ = [path]
            sys.modules[pkg] = m
    return importlib.import_module('timm.layers.' + filename)


def build_timm(name, ours, timm_path=None):
    """timm's layer for ``name`` with our module's weights, or raises (KeyError: timm has none;
    ImportError: it cannot be imported here)."""
    filename, builder = TIMM_BUILDERS[name]
    try:
        mod = import_timm_layer(filename, timm_path)
    except ImportError as e:
        raise ImportError(f'timm.layers.{filename} cannot be imported: '
                          f'{type(e).__name__}: {e}') from e
    t, state = builder(ours, mod)
    return _load_weights(t, state or None, ours)


# -- mmcv and mmseg -------------------------------------------------------------------------------
# our module -> builder taking ours -> (reference module, its state dict or None for ours')
def _mmcv_gc(ours):
    from mmcv.cnn import ContextBlock
    return ContextBlock(ours.in_channels, ours.ratio, ours.pooling_type, ours.fusion_types), None


def _mmcv_nonlocal(ours):
    from mmcv.cnn import NonLocal2d
    if ours.sub_sample or ours.norm is None:
        raise NotImplementedError('only sub_sample=False with a BN is mapped (mmcv pools after '
                                  'the convs, ours before)')
    ref = NonLocal2d(ours.in_channels, reduction=ours.reduction, use_scale=ours.use_scale,
                     mode=ours.mode, norm_cfg=dict(type='BN'))
    s = ours.state_dict()
    state = {}
    for name in ('g', 'theta', 'phi', 'concat_project'):
        for k in ('weight', 'bias'):
            if f'{name}.{k}' in s:
                state[f'{name}.conv.{k}'] = s[f'{name}.{k}']
    # mmcv's output conv has no bias: ours is folded into the BN's running mean, which the
    # batch statistics of training mode ignore (as they ignore a constant per channel)
    state['conv_out.conv.weight'] = s['conv_out.weight']
    for k in ('weight', 'bias', 'running_var', 'num_batches_tracked'):
        state['conv_out.bn.' + k] = s['norm.' + k]
    state['conv_out.bn.running_mean'] = s['norm.running_mean'] - s['conv_out.bias']
    return ref, state


def _mmcv_criss_cross(ours):
    import torch.nn as nn
    from mmcv.ops import CrissCrossAttention
    if ours.key_channels != ours.in_channels // 8:
        raise NotImplementedError('mmcv reduces the query and key width by 8')

    class Recurrent(nn.Module):
        """mmcv's module applied ``recurrence`` times, as CCNet applies it."""

        def __init__(self):
            super().__init__()
            self.cca = CrissCrossAttention(ours.in_channels)

        def forward(self, x):
            for _ in range(ours.recurrence):
                x = self.cca(x)
            return x

    state = {'cca.' + k: v for k, v in ours.state_dict().items()}
    state['cca.gamma.scale'] = state.pop('cca.gamma')
    return Recurrent(), state


def _mmseg_pam(ours):
    from mmseg.models.decode_heads.da_head import PAM
    ref = PAM(ours.in_channels, ours.key_channels)
    s = ours.state_dict()
    state = {f'{theirs}.{k}': s[f'{mine}.{k}'] for theirs, mine in (
        ('query_project', 'query_conv'), ('key_project', 'key_conv'),
        ('value_project', 'value_conv')) for k in ('weight', 'bias')}
    state['gamma.scale'] = s['gamma'].reshape(ref.gamma.scale.shape)
    return ref, state


def _mmseg_cam(ours):
    from mmseg.models.decode_heads.da_head import CAM
    ref = CAM()
    return ref, {'gamma.scale': ours.state_dict()['gamma'].reshape(ref.gamma.scale.shape)}


# implementation -> {our module: builder}; timm's builders also take the layer's file
REFERENCES = {
    'timm': TIMM_BUILDERS,
    'mmcv': {'GlobalContext': _mmcv_gc, 'NonLocal': _mmcv_nonlocal,
             'CrissCross': _mmcv_criss_cross},
    'mmseg': {'DANetPAM': _mmseg_pam, 'DANetCAM': _mmseg_cam},
}


def _load_weights(ref, state, ours):
    """``ref`` with ``state`` (ours' own where None) loaded strictly, on ours' dtype, device
    and training mode."""
    floats = [p for p in ours.parameters()]
    if floats:
        ref.to(dtype=floats[0].dtype, device=floats[0].device)
    ref.load_state_dict(ours.state_dict() if state is None else state, strict=True)
    return ref.train(ours.training)


def build_reference(impl, name, ours, timm_path=None):
    """The ``impl`` library's module for ``name`` with our module's weights, or raises
    (KeyError: the library has none; ImportError: it cannot be imported here;
    NotImplementedError: our configuration has no counterpart there)."""
    if impl == 'timm':
        return build_timm(name, ours, timm_path)
    builder = REFERENCES[impl][name]
    try:
        ref, state = builder(ours)
    except ImportError as e:
        raise ImportError(f'{impl} cannot be imported: {type(e).__name__}: {e}') from e
    return _load_weights(ref, state, ours)


def build_impl(impl, name, ours, timm_path=None):
    """The module that ``impl`` times; ``plain`` is ours itself, run with the switch off."""
    if impl in ('mmattn', 'plain'):
        return ours
    return build_reference(impl, name, ours, timm_path)


def implementations(module, impls):
    """Those of ``impls`` that exist for ``module``."""
    return [i for i in impls if i in ('mmattn', 'plain') or module in REFERENCES[i]]


# -- worker: one (module, implementation) in its own process --------------------------------------
def _summary(ts):
    return dict(min_ms=min(ts) * 1e3, median_ms=statistics.median(ts) * 1e3, n=len(ts))


def _threads(args):
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    return torch.get_num_threads()


def _try_build(impl, name, ours, timm_path):
    """(module, None) or (None, why it is unavailable)."""
    try:
        return build_impl(impl, name, ours, timm_path), None
    except (KeyError, ImportError, NotImplementedError) as e:
        return None, f'{type(e).__name__}: {e}'.replace('\n', ' ')


class _Case:
    """One implementation with its parameters: a training step and gradient clearing, the
    forward under autocast where ``--amp`` asks for it (the backward outside, as in training),
    with mmattn's CPU fast paths on or off (``fast``)."""

    def __init__(self, model, device='cpu', amp=None, fast=True):
        self.model = model
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.device, self.amp, self.fast = device, amp, fast

    def forward(self, inputs):
        from mmattn.models.layers import fast_paths
        with autocast(self.device, self.amp), fast_paths(self.fast):
            return self.model(*inputs)

    def step(self, inputs, gy):
        out = self.forward(inputs)
        out.backward(gy.to(out.dtype))
        return out

    def clear(self, inputs):
        for t in list(inputs) + self.params:
            t.grad = None

    def warm_up(self, name, shape):
        """One forward + backward on a small map (kernels, thread pools); the output width."""
        import torch
        n, c = shape[:2]
        small = [t.requires_grad_() for t in example_inputs(
            name, (n, c, WARMUP_SIZE, WARMUP_SIZE), device=self.device)]
        out = self.forward(small)
        out.backward(torch.ones_like(out))
        self.clear(small)
        return out.shape[1]


def _full_inputs(name, shape, out_channels, device='cpu'):
    import torch
    inputs = [t.requires_grad_() for t in example_inputs(name, shape, device=device)]
    gy = torch.randn(shape[0], out_channels, *shape[2:],
                     generator=torch.Generator().manual_seed(2)).to(device)
    return inputs, gy


def memory_worker(args):
    """Peak memory of the first full-size training step of one implementation: the growth of
    the process's peak resident memory on the CPU, of the CUDA allocator's
    ``max_memory_allocated`` on a GPU, over what the weights and inputs already hold."""
    from mmattn.utils.memory import peak_bytes, reset_peak
    result = dict(module=args.module, impl=args.impls[0], threads=_threads(args))
    ours = build_ours(args.module, args.shape[1], device=args.device)
    model, why = _try_build(args.impls[0], args.module, ours, args.timm_path)
    if model is None:
        result['unavailable'] = why
        return result
    if model is not ours:
        del ours  # only the measured implementation's weights stay in the baseline
    case = _Case(model, args.device, args.amp, fast=args.impls[0] != 'plain')
    inputs, gy = _full_inputs(args.module, args.shape, case.warm_up(args.module, args.shape),
                              args.device)
    result['peak_reset'] = reset_peak(args.device) is None
    base = peak_bytes(args.device)
    import torch
    torch.manual_seed(3)
    case.step(inputs, gy)
    result['peak_mib'] = (peak_bytes(args.device) - base) / 2**20
    return result


@contextlib.contextmanager
def counting_kernel_calls():
    """Inside the block, record the name of every call into
    :mod:`mmattn.models.layers.cpu_kernels` (a module that makes none runs its plain formula)
    in the list it yields."""
    import inspect

    from mmattn.models.layers import cpu_kernels
    calls = []

    def counted(fn):
        def wrapper(*a, **kw):
            calls.append(fn.__name__)
            return fn(*a, **kw)
        return wrapper

    saved = {n: getattr(cpu_kernels, n) for n in cpu_kernels.__all__
             if inspect.isfunction(getattr(cpu_kernels, n))}
    try:
        for n, fn in saved.items():
            setattr(cpu_kernels, n, counted(fn))
        yield calls
    finally:
        for n, fn in saved.items():
            setattr(cpu_kernels, n, fn)


def _float64_diffs(name, ours, cases, shape, device):
    """{impl: (out, grad)}: each implementation's output and input gradients against ours,
    all in float64 at a (2, C, F64_SIZE, F64_SIZE) map, as relative differences."""
    import copy

    import torch
    small = (2, shape[1], F64_SIZE, F64_SIZE)
    base = example_inputs(name, small, dtype=torch.float64, device=device)

    def run(model, fast):
        model = copy.deepcopy(model).double()
        inputs = [t.clone().requires_grad_() for t in base]
        torch.manual_seed(3)
        out = _Case(model, device, fast=fast).forward(inputs)
        gy = torch.randn(out.shape, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(2)).to(device)
        out.backward(gy)
        return out.detach(), [t.grad for t in inputs]

    ref, ref_grads = run(ours, True)
    diffs = {}
    for impl, case in cases.items():
        if impl == 'mmattn':
            continue
        out, grads = run(case.model, case.fast)
        diffs[impl] = (rel_diff(out, ref),
                       max(rel_diff(g, r) for g, r in zip(grads, ref_grads)))
    return diffs


def time_worker(args):
    """Check every implementation against ours, then time them interleaved, with the pass."""
    import torch
    threads = _threads(args)
    device, amp = args.device, args.amp
    ours = build_ours(args.module, args.shape[1], device=device)
    cases, results = {}, {}
    for impl in args.impls:
        model, why = _try_build(impl, args.module, ours, args.timm_path)
        results[impl] = dict(module=args.module, impl=impl, threads=threads)
        if model is None:
            results[impl]['unavailable'] = why
        else:
            cases[impl] = _Case(model, device, amp, fast=impl != 'plain')
    # the reference is ours in float32, also under --amp: then every implementation, ours
    # included, is compared with it, and ours should lose no more than plain does
    ref_case = _Case(ours, device)
    out_channels = ref_case.warm_up(args.module, args.shape)
    for case in cases.values():
        case.warm_up(args.module, args.shape)
    inputs, gy = _full_inputs(args.module, args.shape, out_channels, device)

    # check: the same inputs, dropout masks and output gradient as ours. Ours' step (under
    # --amp, the mmattn row's, checked first) also says whether it takes a CPU fast path:
    # where it does not, plain would run the very same code and is left out
    torch.manual_seed(3)
    with counting_kernel_calls() as kernel_calls:
        ref = ref_case.step(inputs, gy).detach()
    ref_grads = [t.grad for t in inputs]
    ref_case.clear(inputs)
    for impl in sorted(cases, key=lambda i: i != 'mmattn'):
        if impl == 'mmattn' and amp is None:
            continue
        if impl == 'plain' and not kernel_calls:
            del cases['plain']
            results['plain']['same_code'] = True
            continue
        case = cases[impl]
        torch.manual_seed(3)
        with counting_kernel_calls() as calls:
            out = case.step(inputs, gy).detach()
        if impl == 'mmattn':
            kernel_calls = calls
        results[impl]['diff_out'] = rel_diff(out, ref)
        results[impl]['diff_grad'] = max(rel_diff(t.grad, g) for t, g in zip(inputs, ref_grads))
        case.clear(inputs)
        del out
    del ref, ref_grads
    try:
        for impl, (d_out, d_grad) in _float64_diffs(args.module, ours, cases, args.shape,
                                                    device).items():
            results[impl].update(diff64_out=d_out, diff64_grad=d_grad)
    except RuntimeError as e:  # e.g. a kernel without float64 on this device
        for impl in cases:
            results[impl]['diff64_error'] = f'{type(e).__name__}: {e}'.replace('\n', ' ')

    x = torch.randn(*args.shape).to(device)
    s = torch.rand(*args.shape[:2], 1, 1).to(device)

    def one_pass():
        with torch.no_grad():
            y = x * s
        del y

    # interleaved: every round times each implementation once, in a rotating order, so that
    # a change of the machine's load shifts all of them alike
    names = list(cases)
    times = {impl: dict(fwd=[], fwd_bwd=[]) for impl in names}
    pass_times = []
    for what in ('fwd', 'fwd_bwd'):
        start = time.perf_counter()
        for rnd in range(args.repeat):
            for i in range(len(names)):
                impl = names[(rnd + i) % len(names)]
                case = cases[impl]
                synchronize(device)
                t = time.perf_counter()
                if what == 'fwd':
                    out = case.forward(inputs)
                    del out
                else:
                    case.step(inputs, gy)
                    case.clear(inputs)
                synchronize(device)
                times[impl][what].append(time.perf_counter() - t)
                t = time.perf_counter()
                one_pass()
                synchronize(device)
                pass_times.append(time.perf_counter() - t)
            if rnd >= 2 and time.perf_counter() - start > args.budget * len(names):
                break
    for impl in names:
        results[impl].update(fwd=_summary(times[impl]['fwd']),
                             fwd_bwd=_summary(times[impl]['fwd_bwd']),
                             **{'pass': _summary(pass_times)})
    return results


# -- driver ---------------------------------------------------------------------------------------
def _child(conn, kind, module, impls, args):
    """Entry point of a worker process: run one worker, send its result back."""
    try:
        args = argparse.Namespace(**vars(args))
        args.module, args.impls = module, impls
        result = (time_worker if kind == 'time' else memory_worker)(args)
        conn.send(('ok', result))
    except BaseException as e:  # noqa: B902 - the driver reports it in the table
        conn.send(('error', f'{type(e).__name__}: {e}'.replace('\n', ' ')))
    finally:
        conn.close()


def _worker_context():
    """Worker processes are forked from a server that has imported torch and mmattn once.

    Each (module, implementation) still gets a fresh process of its own, one that has run
    nothing; importing mmattn (which imports mmdet and mmseg) would otherwise take several
    seconds per process, most of this benchmark's time.
    """
    import multiprocessing as mp
    for path in (ROOT, HERE):
        if path not in sys.path:
            sys.path.insert(0, path)
    ctx = mp.get_context('forkserver')
    ctx.set_forkserver_preload(['torch', 'mmattn'])
    return ctx


def _run_worker(ctx, kind, module, impls, args):
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, kind, module, impls, args))
    proc.start()
    send.close()
    try:
        if recv.poll(args.timeout):
            status, payload = recv.recv()
        else:
            status, payload = 'error', f'timed out after {args.timeout} s'
    except EOFError:
        proc.join(10)
        status, payload = 'error', f'worker died (exit code {proc.exitcode})'
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(10)
        recv.close()
    return (payload, None) if status == 'ok' else (None, payload)


def run_module(ctx, module, args):
    """One row per implementation: times and checks from one process, the peak memory of
    each implementation from a fresh process of its own."""
    impls = implementations(module, args.impls)
    timed, err = _run_worker(ctx, 'time', module, impls, args)
    rows = []
    for impl in impls:
        row = dict(module=module, impl=impl)
        if timed is None:
            row['error'] = err
        else:
            row.update(timed[impl])
        if 'fwd_bwd' in row and not args.skip_memory:
            mem, err_m = _run_worker(ctx, 'memory', module, [impl], args)
            if mem is None:
                row['peak_error'] = err_m
            else:
                row['peak_mib'] = mem['peak_mib']
                row['peak_reset'] = mem['peak_reset']
        rows.append(row)
    return rows


def _ms(d):
    return f'{d["min_ms"]:.3g} / {d["median_ms"]:.3g}'


def flagged(r, results, amp=None):
    """Whether a row's check failed. Another implementation differs from ours in float64 by
    more than F64_MISMATCH; where no float64 check ran, in float32 by more than MISMATCH.
    Under autocast every row is compared with ours in float32, and ours is flagged where its
    error exceeds twice the plain formula's at the same precision plus MISMATCH_AMP (rounding
    of the reduced precision is no fault; losing more than plain does is)."""
    if 'diff64_out' in r and max(r['diff64_out'], r['diff64_grad']) > F64_MISMATCH:
        return True
    if 'diff_out' not in r:
        return False
    err = max(r['diff_out'], r['diff_grad'])
    if amp is None:
        return 'diff64_out' not in r and err > MISMATCH
    if r['impl'] != 'mmattn':
        return False
    plain = next((p for p in results if p['module'] == r['module'] and p['impl'] == 'plain'
                  and 'diff_out' in p), None)
    if plain is None:
        return False
    return err > 2 * max(plain['diff_out'], plain['diff_grad']) + MISMATCH_AMP


def format_tables(results, meta):
    """The markdown tables: every case, then the light gates in passes."""
    amp = meta.get('amp')
    vs = ' vs mmattn fp32' if amp else ''
    lines = [meta['env'], '',
             f'torch {meta["torch"]}, {meta["threads"]} thread(s), {meta["precision"]}, shape '
             f'{tuple(meta["shape"])}, training mode; {meta["device_name"]}; load average '
             f'{meta["load_before"]} before, {meta["load_after"]} after', '',
             '| module | impl | fwd ms (min / median) | fwd+bwd ms (min / median) | '
             f'peak MiB | fwd+bwd vs mmattn | rel. diff out / grad{vs} | '
             'float64 rel. diff out / grad |',
             '|---|---|---|---|---|---|---|---|']
    ours_time = {r['module']: r['fwd_bwd']['min_ms'] for r in results
                 if r['impl'] == 'mmattn' and 'fwd_bwd' in r}
    same_code = [r['module'] for r in results if r.get('same_code')]
    for r in results:
        if r.get('same_code'):
            continue
        head = f'| {r["module"]} | {r["impl"]} |'
        if 'fwd_bwd' not in r:
            why = r.get('unavailable') or r.get('error', '')
            lines.append(f'{head} {why} | | | | | |')
            continue
        ratio = ''
        if r['module'] in ours_time and r['impl'] != 'mmattn':
            ratio = f'{r["fwd_bwd"]["min_ms"] / ours_time[r["module"]]:.2f}x'
        flag = ' **MISMATCH**' if flagged(r, results, amp) else ''
        diff = f'{r["diff_out"]:.1e} / {r["diff_grad"]:.1e}' if 'diff_out' in r else ''
        diff64 = (f'{r["diff64_out"]:.1e} / {r["diff64_grad"]:.1e}' if 'diff64_out' in r
                  else r.get('diff64_error', ''))
        peak = f'{r["peak_mib"]:.1f}' if 'peak_mib' in r else r.get('peak_error', '')
        if meta.get('skip_memory'):
            peak = 'not measured'
        lines.append(f'{head} {_ms(r["fwd"])} | {_ms(r["fwd_bwd"])} | {peak} | '
                     f'{ratio} | {diff} | {diff64}{flag} |')
    if same_code:
        lines += ['', 'Without a CPU fast path on this device, so no `plain` row (ours runs the '
                  'plain formula itself): ' + ', '.join(same_code) + '.']
    gates = [r for r in results if r['module'] in LIGHT_GATES and 'fwd_bwd' in r]
    if gates:
        lines += ['', 'Light gates in passes (one pass = `x * s`, s of shape (N, C, 1, 1), no '
                  'autograd, timed in the same process; min / min):', '',
                  '| module | impl | pass ms (min / median) | fwd passes | fwd+bwd passes |',
                  '|---|---|---|---|---|']
        for r in gates:
            p = r['pass']['min_ms']
            lines.append(f'| {r["module"]} | {r["impl"]} | {_ms(r["pass"])} | '
                         f'{r["fwd"]["min_ms"] / p:.1f} | {r["fwd_bwd"]["min_ms"] / p:.1f} |')
    return '\n'.join(lines)


def slower_than_plain(results, tolerance=0.05):
    """(module, what, ours ms, plain ms) where ours' min time exceeds plain's by > tolerance."""
    by = {(r['module'], r['impl']): r for r in results if 'fwd_bwd' in r}
    slow = []
    for (module, impl), r in by.items():
        plain = by.get((module, 'plain'))
        if impl != 'mmattn' or plain is None:
            continue
        for what in ('fwd', 'fwd_bwd'):
            a, b = r[what]['min_ms'], plain[what]['min_ms']
            if a > b * (1 + tolerance):
                slow.append((module, what, a, b))
    return slow


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--modules', nargs='+', help='registry names (default: all)')
    parser.add_argument('--impls', nargs='+', default=list(IMPLS), choices=IMPLS)
    parser.add_argument('--shape', type=int, nargs=4, default=[8, 256, 56, 56],
                        metavar=('N', 'C', 'H', 'W'))
    parser.add_argument('--threads', type=int, default=None,
                        help="torch.set_num_threads in each worker (default: torch's)")
    parser.add_argument('--repeat', type=int, default=10, help='timed calls per loop')
    parser.add_argument('--budget', type=float, default=10.0,
                        help='seconds after which a timing loop stops (after >= 3 calls)')
    parser.add_argument('--timm-path', default=None,
                        help='directory holding an unpacked timm package (timm/)')
    parser.add_argument('--timeout', type=int, default=900, help='seconds per case')
    parser.add_argument('--json', default=None, help='also write the results here')
    parser.add_argument('--skip-memory', action='store_true',
                        help='no peak-memory workers (one process fewer per implementation)')
    add_device_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import torch
    check_device(args.device, 'module_speed')
    sys.path.insert(0, ROOT)
    from mmattn.models.factory import attention_classes
    names = list(attention_classes())
    modules = args.modules or names
    unknown = [m for m in modules if m not in names]
    if unknown:
        raise SystemExit(f'module_speed: unknown module(s) {unknown}; registered: '
                         f'{", ".join(names)}')
    threads = args.threads or torch.get_num_threads()
    meta = dict(torch=torch.__version__, shape=args.shape, threads=threads,
                load_before=' '.join(f'{v:.2f}' for v in os.getloadavg()), argv=sys.argv[1:],
                amp=args.amp, skip_memory=args.skip_memory,
                env=env_line(args.device, args.amp, threads),
                **{k: v for k, v in env_info(args.device, args.amp, threads).items()
                   if k not in ('torch', 'threads')})
    results, done = [], 0
    ctx = _worker_context()
    try:
        with stop_on_sigterm():  # a time limit still gets the tables of the modules done
            for module in modules:
                for r in run_module(ctx, module, args):
                    results.append(r)
                    print(f'{module:18s} {r["impl"]:7s} ' + (
                        f'fwd+bwd {_ms(r["fwd_bwd"])} ms, peak {r.get("peak_mib", -1):.0f} '
                        'MiB' if 'fwd_bwd' in r else r.get('unavailable') or r.get('error', '')),
                        file=sys.stderr, flush=True)
                done += 1
    except Interrupted:
        results = [r for r in results if r['module'] in modules[:done]]
    meta['load_after'] = ' '.join(f'{v:.2f}' for v in os.getloadavg())
    print(format_tables(results, meta))
    slow = slower_than_plain(results)
    mismatched = [f'{r["module"]} ({r["impl"]})' for r in results
                  if flagged(r, results, args.amp)]
    print()
    print('mmattn slower than plain (min time, by more than 5%): ' + (', '.join(
        f'{m} {w} {a:.1f} vs {b:.1f} ms' for m, w, a, b in slow) or 'none'))
    if args.amp is None:
        print('outputs or input gradients differing from mmattn by more than '
              f'{F64_MISMATCH:.0e} in float64 (or {MISMATCH:.0e} in float32 where float64 '
              'could not run), relative: ' + (', '.join(mismatched) or 'none'))
    else:
        print(f'under autocast {amp_dtype(args.amp)}, mmattn further from its float32 result '
              f"than twice the plain formula's error + {MISMATCH_AMP:.0e}: "
              + (', '.join(mismatched) or 'none'))
    interrupted = done < len(modules)
    if interrupted:
        print(f'INTERRUPTED (SIGTERM, e.g. a time limit) after {done} of {len(modules)} '
              f'modules; not measured: {", ".join(modules[done:])}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(meta=meta, results=results, interrupted=interrupted), f, indent=1)
    return 1 if mismatched or interrupted else 0


if __name__ == '__main__':
    sys.exit(main())
