"""Fused helpers for the memory-bound parts of light attention gates.

A channel gate ``x * g`` with ``g`` of shape (N, C, 1, 1) costs almost nothing to compute, but
autograd's backward for it reads and writes full-size tensors several times: ``grad_x = gy * g``
(unavoidable), then ``gy * x`` into a new full-size temporary that is read again by the sum
reducing it to ``grad_g``. On feature maps such as (8, 256, 56, 56) that temporary is 25 MB
written to and read back from memory for a result of 2048 numbers.

:func:`channel_gate` computes the same product with a backward that walks the tensors once,
in cache-sized blocks: each block of ``gy`` yields its part of ``grad_x`` and, while it is
still in cache, its per-channel dot products with ``x``. Nothing full-size is allocated but
``grad_x`` itself.

:func:`global_avg_pool` is the gates' global average pooling with a backward that does not
write a full-size gradient either.

:func:`gram` is the batched Gram matrix ``f f^T`` (DANet's CAM, IAU, GSoP's covariance) with a
backward that writes the input's gradient once, in its layout.

:func:`adaptive_avg_pool2d` is PyTorch's adaptive pooling with an ONNX export that works for
input sizes that are not multiples of the output size (FcaNet, SPA, Gather-Excite);
:func:`pool_matrix` is the averaging matrix of its bins along one axis.

:class:`CompiledKernel` runs a small element-wise-and-reduction function as one fused kernel
through ``torch.compile`` (SimAM, whose formula is a chain of full-size element-wise ops).

Every fused path here was measured faster on a CPU only; each asks its rule in
:mod:`mmattn.models.dispatch` (registered at the bottom of this file, with the figures) and
runs autograd's plain ops elsewhere: on an NVIDIA H200 the modules built on them were
1.2-2.6x slower than plain (issue #13). ``python -m mmattn paths`` lists every rule.
"""
import contextlib
import warnings

import torch
import torch.nn.functional as F
from torch.nn.modules import module as _nn_module

from .dispatch import register_rule, select

__all__ = [
    'CompiledKernel', 'adaptive_avg_pool2d', 'autocast_enabled', 'autocast_off', 'channel_gate',
    'cpu_only', 'global_avg_pool', 'gram', 'graph_capture', 'observed', 'pool_matrix'
]

# Where the fused paths run. Each was measured faster than autograd's plain ops on a 2-core
# CPU only (README, "Speed and memory of every module on the CPU"). On an NVIDIA H200 (torch
# 2.11 + CUDA 13.0, project at commit 624c31f, issue #13) the modules built on them lost to
# their plain twins in a training step at (8, 256, 56, 56): a GPU's caches make the traffic
# they save cheap, while their extra kernels and autograd Functions stay. So the plain ops run
# on every device but the CPU (a device nothing was measured on gets the default, plain).
_GPU_FIGURES = ('NVIDIA H200, training step at (8, 256, 56, 56), ours / plain, fp32 (bf16 '
                'autocast): ')


def cpu_only(fast: str):
    """A rule's ``choose``: ``fast`` for a tensor on the CPU, ``'plain'`` elsewhere.

    It reads only ``x.device.type``, so a rule can be asked about a device this machine does
    not have (``python -m mmattn paths`` and the tests ask with stand-in tensors)."""

    def choose(x, **info):
        return fast if x.device.type == 'cpu' else 'plain'

    choose.__qualname__ = f'cpu_only({fast!r})'
    return choose

# Elements per block of the backward's blocked pass. A block of gy and its product with x
# should stay in cache between the two ops that read them (4 MiB of float32 here, split
# among the threads of each op); smaller blocks gain little and cost one parallel region per
# op and block. On GPUs the L2 is tens of MiB, so blocks are larger there.
CPU_BLOCK = 1 << 20
DEVICE_BLOCK = 1 << 22


def graph_capture() -> bool:
    """Whether a graph is being captured (tracing, scripting, ONNX export, an outer compile),
    where the plain ops must be used so that the graph shows them."""
    return (torch.jit.is_tracing() or torch.jit.is_scripting()
            or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling())


def autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for ``device_type``; False on devices without autocast (the
    meta device, where shapes are inferred without data: torch raises if asked there)."""
    return torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(
        device_type)


def autocast_off(device_type: str):
    """A region where autocast is off on ``device_type`` (the sums that must stay in float32);
    nothing to turn off on a device without autocast."""
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def observed(*modules: torch.nn.Module) -> bool:
    """Whether calling these modules can do more than their functional op: forward hooks on
    them (mmattn's attention maps tap convs this way) or global ones. A fused path that reads a
    module's weights instead of calling it must then call the modules."""
    if _nn_module._global_forward_hooks or _nn_module._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in modules)


def _plain_only(*tensors) -> bool:
    """Whether the plain ops must be used: no gradient wanted, or a graph is being captured."""
    return (not torch.is_grad_enabled() or not any(t.requires_grad for t in tensors)
            or graph_capture())


class CompiledKernel:
    """A pure tensor function, compiled by ``torch.compile`` (inductor) on its first call.

    A chain of element-wise ops in eager PyTorch reads and writes one full-size temporary per
    op; inductor fuses the chain and its reductions into loops that read each input once per
    pass. The kernel is compiled once per process with dynamic shapes (one graph for every
    size; dtypes and grad mode each compile once), and inductor caches the generated code on
    disk for the next process.

    Where ``torch.compile`` cannot work (no C++ compiler, an unsupported platform), the first
    call warns once, naming ``owner``, and from then on the function runs eagerly: the same
    results, without the speed.
    """

    def __init__(self, fn, owner: str):
        self.fn = fn
        self.owner = owner
        self._compiled = None
        self.failed = None  # the compile error, once one was seen

    def __call__(self, *args):
        if self.failed is not None:
            return self.fn(*args)
        if self._compiled is None:
            self._compiled = torch.compile(self.fn, dynamic=True, fullgraph=True)
        try:
            return self._compiled(*args)
        except torch._dynamo.exc.TorchDynamoException as err:  # a compile failure
            self.failed = err
            warnings.warn(
                f'{self.owner}: torch.compile could not build the fused kernel '
                f'({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ""}); '
                f'running the unfused formula instead (same results, slower)', RuntimeWarning)
            return self.fn(*args)


def global_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """``x.mean((2, 3), keepdim=True)`` whose backward is a broadcast view.

    Autograd's backward of a mean (and of ``AdaptiveAvgPool2d(1)``, which calls it) divides an
    expanded gradient, writing a full-size tensor that is then added to the input's other
    gradient. Here the backward divides the (N, C, 1, 1) gradient and expands it: autograd adds
    the view into the gate's ``grad_x`` in place, and nothing full-size is allocated.

    Runs on the CPU only (rule ``'global_avg_pool'``): measured there together with
    :func:`channel_gate`, gates 1.2-1.3x faster than plain; on a CUDA GPU the plain mean runs
    (issue #13: the gates built on the two were 1.56-1.98x slower than plain on an H200).
    """
    if _plain_only(x) or x.dim() != 4 or select('global_avg_pool', x) == 'plain':
        return x.mean((2, 3), keepdim=True)
    return _GlobalAvgPool.apply(x)


class _GlobalAvgPool(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x):
        ctx.shape, ctx.dtype = x.shape, x.dtype
        return x.mean((2, 3), keepdim=True)

    @staticmethod
    def backward(ctx, gy):
        n = ctx.shape[2] * ctx.shape[3]
        return (gy.to(ctx.dtype) / n).expand(ctx.shape)


def gram(f: torch.Tensor) -> torch.Tensor:
    """``torch.bmm(f, f.transpose(1, 2))`` for ``f`` of shape (N, C, M), whose backward is one
    product, ``(G + G^T) f``, written in ``f``'s layout.

    Autograd's backward of the bmm treats the two operands apart: ``G f``, and ``f^T G``
    written as (N, M, C) and added to the first through a transposed view, an add the CPU does
    3-4x slower than a contiguous one. Channel attention (DANet's CAM, IAU's channel unit) and
    GSoP's covariance are such Gram matrices. Double backward works (the backward is plain
    differentiable ops).

    Runs on the CPU only (rule ``'gram'``: the product alone at (8, 256, 3136), 47 against
    117 ms forward + backward on the CPU); on a CUDA GPU autograd's bmm runs (DANet's CAM
    1.17x and GSoP 1.30x plain's step on an H200 with it, issue #13).
    """
    if _plain_only(f) or select('gram', f) == 'plain':
        return torch.bmm(f, f.transpose(1, 2))
    return _Gram.apply(f)


class _Gram(torch.autograd.Function):

    @staticmethod
    def forward(ctx, f):
        ctx.save_for_backward(f)
        return torch.bmm(f, f.transpose(1, 2))

    @staticmethod
    def backward(ctx, g):
        f, = ctx.saved_tensors
        return torch.bmm(g + g.transpose(1, 2), f)


def channel_gate(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Return ``x * g`` for a per-channel gate ``g`` of shape (N, C, 1, 1).

    The result and its gradients are those of the plain product; only the backward's memory
    traffic differs. Falls back to the plain product where the fused one brings nothing or
    cannot be used:

    - no gradient is wanted (inference);
    - ONNX export, TorchScript tracing or ``torch.compile`` (the graph must show a plain Mul,
      and compilers fuse the product and its reduction themselves);
    - ``g`` not of shape (N, C, 1, 1);
    - on any device but the CPU (rule ``'channel_gate'``). On the CPU the gates built on it
      (SE, ECA, cSE, Gather-Excite) train 1.2-1.3x faster than plain, with one feature map
      less peak memory; on an NVIDIA H200 they were 1.56-1.98x slower than plain (issue #13),
      so the plain product runs there.
    """
    if (_plain_only(x, g) or x.dim() != 4 or g.shape != (x.shape[0], x.shape[1], 1, 1)
            or select('channel_gate', x) == 'plain'):
        return x * g
    return _ChannelGate.apply(x, g)


class _ChannelGate(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, g):
        ctx.save_for_backward(x, g)
        return x * g

    @staticmethod
    def backward(ctx, gy):
        x, g = ctx.saved_tensors
        need_x, need_g = ctx.needs_input_grad[:2]
        if torch.is_grad_enabled() or not _blocked_layout(gy, x, g):
            # create_graph=True (double backward) needs differentiable ops; other dtype
            # mixes and odd strides take autograd's own formulas.
            gx = (gy * g).to(x.dtype) if need_x else None
            gg = (gy * x).sum((2, 3), keepdim=True).to(g.dtype) if need_g else None
            return gx, gg
        return _blocked_backward(gy, x, g, need_x, need_g)


def _blocked_layout(gy, x, g):
    """'nchw', 'nhwc' if gy and x share a dense layout the blocked pass can walk, else None."""
    # grad_x is written in x's dtype: gy must have it, and g must not promote past it (under
    # autocast, x is often float32 and g half precision; the product is then float32)
    if not (gy.dtype == x.dtype
            and (g.dtype == x.dtype or torch.promote_types(x.dtype, g.dtype) == x.dtype)
            and gy.device == x.device == g.device):
        return None
    if gy.is_contiguous() and x.is_contiguous():
        return 'nchw'
    cl = torch.channels_last
    if gy.is_contiguous(memory_format=cl) and x.is_contiguous(memory_format=cl):
        return 'nhwc'
    return None


def _block_size(t):
    return CPU_BLOCK if t.device.type == 'cpu' else DEVICE_BLOCK


def _product(a, b, out):
    """a * b into the block buffer ``out``, multiplied in out's (accumulation) precision."""
    if out.dtype == a.dtype:
        return torch.mul(a, b, out=out)
    # a mul with a float32 out= still multiplies in half precision: upcast first
    return out.copy_(a).mul_(b)


def _blocked_backward(gy, x, g, need_x, need_g):
    n, c, h, w = x.shape
    length = h * w
    # low-precision dot products of thousands of terms are formed and summed in float32
    acc = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    gx = torch.empty_like(gy) if need_x else None
    gg = torch.zeros(n, c, dtype=acc, device=x.device) if need_g else None
    block = _block_size(x)
    if _blocked_layout(gy, x, g) == 'nchw':
        # one row per (sample, channel): grad_g is a dot product per row
        rows_total = n * c
        a, b, gv = gy.view(rows_total, length), x.view(rows_total, length), g.reshape(-1, 1)
        gxv = gx.view(rows_total, length) if need_x else None
        ggv = gg.view(rows_total) if need_g else None
        rows = max(1, block // length)
        buf = torch.empty(min(rows, rows_total), length, dtype=acc, device=x.device)
        for i in range(0, rows_total, rows):
            j = min(i + rows, rows_total)
            ai = a[i:j]
            if need_x:
                torch.mul(ai, gv[i:j], out=gxv[i:j])
            if need_g:
                torch.sum(_product(ai, b[i:j], buf[:j - i]), 1, out=ggv[i:j])
    else:
        # channels_last: (N, H*W, C) with channels innermost; grad_g sums over positions
        a = gy.permute(0, 2, 3, 1).reshape(n, length, c)
        b = x.permute(0, 2, 3, 1).reshape(n, length, c)
        gxv = gx.permute(0, 2, 3, 1).reshape(n, length, c) if need_x else None
        rows = max(1, block // c)
        buf = torch.empty(min(rows, length), c, dtype=acc, device=x.device)
        for k in range(n):
            gk = g[k].reshape(1, c)
            for i in range(0, length, rows):
                j = min(i + rows, length)
                ai = a[k, i:j]
                if need_x:
                    torch.mul(ai, gk, out=gxv[k, i:j])
                if need_g:
                    gg[k] += _product(ai, b[k, i:j], buf[:j - i]).sum(0)
    if need_g:
        gg = gg.to(g.dtype).view(n, c, 1, 1)
    return gx, gg


def adaptive_avg_pool2d(x: torch.Tensor, output_size) -> torch.Tensor:
    """``F.adaptive_avg_pool2d`` that also exports to ONNX for any input size.

    The TorchScript ONNX exporter only exports adaptive pooling when the input size is a
    multiple of the output size; a detector's feature maps rarely are. While tracing, the same
    bins (row ``i`` of ``out`` averages input rows ``floor(i*H/out)`` to ``ceil((i+1)*H/out)``,
    as PyTorch computes them) are written as two small averaging matrices, one per axis. Only
    during ONNX export: other traces (FLOP counters, ``torch.jit.trace``) keep the pooling op,
    so that they count and run what the model runs.
    """
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
    if not torch.onnx.is_in_onnx_export():
        return F.adaptive_avg_pool2d(x, (oh, ow))
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if h % oh == 0 and w % ow == 0:
        return F.adaptive_avg_pool2d(x, (oh, ow))
    ph = pool_matrix(h, oh, x)
    pw = pool_matrix(w, ow, x)
    return torch.matmul(torch.matmul(ph, x), pw.t())


def pool_matrix(in_size: int, out_size: int, like: torch.Tensor) -> torch.Tensor:
    """The (out_size, in_size) matrix of ``adaptive_avg_pool1d``: bin i averages the inputs
    ``floor(i * in / out) <= j < ceil((i + 1) * in / out)``, exactly as PyTorch's bins; of
    ``like``'s dtype and device."""
    i = torch.arange(out_size, device=like.device)
    start = torch.div(i * in_size, out_size, rounding_mode='floor')
    end = torch.div((i + 1) * in_size + out_size - 1, out_size, rounding_mode='floor')
    j = torch.arange(in_size, device=like.device)
    mask = (j[None, :] >= start[:, None]) & (j[None, :] < end[:, None])
    return mask.to(like.dtype) / (end - start)[:, None].to(like.dtype)


# -- where each fused path runs (python -m mmattn paths) ------------------------------------
register_rule(
    'channel_gate', ('plain', 'fused'), cpu_only('fused'),
    reason='CPU (Xeon, 1 thread, float32, training step at (8, 256, 56, 56), README): the '
    'gates on channel_gate + global_avg_pool take 4.9-5.9 passes over the map against 6.0-9.4 '
    'for plain, SE/ECA/cSE/GE 1.23-1.32x faster, one feature map less peak memory. '
    + _GPU_FIGURES + 'SE 1.70 (1.39), ECA 1.56 (1.51), GE 1.98 (2.01), cSE 1.73 (1.39), SRM '
    '1.43 (1.11), SK 1.28 (1.11) (issue #13): plain x * g off the CPU.')
register_rule(
    'global_avg_pool', ('plain', 'fused'), cpu_only('fused'),
    reason='CPU: measured with channel_gate (the same gates, README): its backward writes no '
    'full-size gradient. ' + _GPU_FIGURES + 'the gates on both 1.56-1.98 (1.39-2.01), BAM 1.13 '
    '(1.04), CBAM 1.20 (1.15) (issue #13): plain x.mean((2, 3)) off the CPU.')
register_rule(
    'gram', ('plain', 'fused'), cpu_only('fused'),
    reason='CPU: bmm(f, f^T) forward + backward at (8, 256, 3136) 117 ms plain, 47 ms fused '
    '(README; channel IAU 1.30x, GSoP 1.12x faster). ' + _GPU_FIGURES + 'DANetCAM 1.17 '
    '(1.17), GSoP 1.30 (1.28) (issue #13): plain bmm off the CPU.')
