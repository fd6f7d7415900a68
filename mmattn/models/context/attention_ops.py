"""Pixel-to-pixel attention without an HW x HW matrix in memory.

The self-attention modules of this family (Non-local, DANet's PAM) relate every position to
every other. Written out, ``softmax(q k^T) v`` holds an (HW x HW) matrix, and autograd keeps it
and its softmax for the backward: 4 GiB each for one 128 x 256 feature map in float32. The
functions here give the same numbers while holding O(HW) memory (plus a bounded block).

Each call asks :mod:`mmattn.models.dispatch` which path to run (rules ``'softmax_attention'``
and ``'concat_attention'``, registered below with their reasons); ``lean=False`` always runs
the explicit formula. The paths:

- ``'explicit'``: the formula written out. Chosen on a GPU in float32 while the matrix is
  small enough (up to 2 x 64 x 128 pixels): no recomputation, plain's own products.
- ``'sdpa'``: ``F.scaled_dot_product_attention``, one head. On the CPU its fused (flash)
  kernel is used only when the query, key and value widths are equal **and** the inputs are
  contiguous in memory; otherwise it falls back, silently, to the math kernel, which builds the
  full matrix (PAM's C/8-wide queries against C-wide values; a transposed (N, HW, C) view of a
  conv output). Inputs are therefore made contiguous here. On the CPU its backward is 2-5x
  slower than the explicit one (it runs one thread per batch x head), so it serves inference.
- ``'sdpa_heads'``: the same kernel for unequal widths, on a GPU in half precision (where
  flash and cuDNN attention need equal widths of at most 256): the value channels are split
  into heads that all share q and k, and q, k are zero-padded to the head width (zero columns
  add nothing to q . k; the scale is passed explicitly).
- ``'blocked'``: attention by blocks of queries (:class:`_ChunkedSoftmaxAttention`): each block
  of queries sees all keys, and the backward recomputes each block's probabilities instead of
  keeping them. Blocks are small on the CPU (its caches) and large on a GPU (kernel launches).
- Non-local's concatenation form, ReLU(a_i + b_j) / M (no softmax), runs explicitly or block
  by block with the same recompute-in-backward scheme (:func:`concat_attention`).
- Per-block temporaries live in buffers allocated once per call: fresh multi-MiB blocks
  interleaved with small tensors fragmented glibc's heap, whose resident size then grew by
  hundreds of MiB over a few hundred blocks.

Channel attention (DANet's CAM, the channel IAU) holds only a C x C matrix, but a softmax of
energies that sum over every position: on real feature maps most of its probabilities
underflow, and many land among the subnormal floats, which x86 CPUs multiply 10-100x slower.
:func:`flushed_softmax` sets those to zero, in the forward and in its gradient.

ONNX export and TorchScript tracing take the explicit formula: the graph then holds the plain
operators every runtime has.
"""

import warnings

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..dispatch import register_rule, select
from ..ops import autocast_enabled, autocast_off, cpu_only

__all__ = [
    'softmax_attention', 'concat_attention', 'anchor_attention', 'explicit_softmax_attention',
    'explicit_concat_attention', 'flushed_softmax', 'choose_softmax_path', 'choose_concat_path',
    'choose_anchor_path'
]

# Elements of one block's (samples x queries x keys) matrix: 32 MiB in float32; the backward
# holds three such blocks. A block also has at least MIN_ROWS queries (of one sample), because
# each matrix product re-packs the whole key and value matrices: with 128 queries per block, a
# 128 x 256 map's PAM spent more time packing V than multiplying (1.3x the time with 1024). At
# 64 x 128 pixels (8192 keys) a block is 1024 queries, and a training step takes about the
# explicit path's time: one extra matrix product for the recomputation, against the explicit
# path's full-size softmax, scaling and their backward passes through memory.
BLOCK_ELEMENTS = 1 << 23
MIN_ROWS = 512

# On a GPU the attention matrices the lean paths hold stay under 1/10 of what the explicit
# formula holds wherever it is not run (16.5 GB at 1x512x128x256 on an H200, issue #13; a
# block of 1024 queries holds 1024 / queries of it):
# - the explicit formula itself while its matrices, three float32 ones at its backward's peak,
#   fit CUDA_EXPLICIT_BYTES (1 GiB): CUDA_EXPLICIT_ELEMENTS elements each. That holds Non-local
#   at (8, 256, 56, 56) (78.7M elements, 0.94 GB), where the module must cost what plain
#   costs, and not PAM in DANet's training crop, 2x512x64x128 (134M elements, 1.6 GB): there
#   mmseg's DAHead step took 6347 MiB and ours by blocks 4957 MiB (78%) in 73.8 ms against
#   72.5 ms (H200, float32, issue #13); the explicit matrices are that difference, and the
#   step must stay under 80% of mmseg's memory. (In half precision the fused kernels run
#   instead, for query widths up to 256.)
# - else blocks of CUDA_BLOCK_ELEMENTS (32 MiB in float32, three in the backward) with at
#   least CUDA_MIN_ROWS queries: 1024 queries per block at 64 x 128, the blocking of the
#   DANet step above; 1024 queries (128 MiB) at 128 x 256, where the CPU's 512-query blocks
#   made a GPU step many small products and about ten kernel launches per block (PAM at
#   1x512x128x256: 106 ms against the explicit 87 ms) and 1024-query ones make each product
#   17 GFLOP, the step's peak growing by about 300 MiB from 616 MiB. The 128 x 256 figures are
#   estimates from those measurements, not yet measured on a GPU.
CUDA_EXPLICIT_BYTES = 1 << 30
CUDA_EXPLICIT_ELEMENTS = CUDA_EXPLICIT_BYTES // (3 * 4)
CUDA_BLOCK_ELEMENTS = 1 << 23
CUDA_MIN_ROWS = 1024

# Fused kernels the SDPA paths may take on a GPU, fastest first: all three hold O(HW) memory;
# the math kernel, which builds the full matrix, is left out, so that a shape no fused kernel
# takes raises (and runs blocked) instead of silently needing the explicit path's memory.
# cuDNN before flash: one head of q/k/v 256 at 32768 queries, bfloat16, forward + backward on
# an H200: 8.9 ms (cuDNN), 14.1 ms (flash) (issue #13).
_CUDA_SDPA_BACKENDS = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION,
                       SDPBackend.EFFICIENT_ATTENTION]
_FUSED_ONLY = ('cuda', )  # devices whose SDPA paths are restricted to those kernels
# flash and cuDNN attention take equal q/k/v widths of at most 256, multiples of 8
MAX_HEAD_WIDTH = 256
# The head width of 'sdpa_heads' when the values are wider: any width >= the queries' gives
# the same number of products (each head repeats q k^T at its own width, and the heads
# together cover the values once), so the width is the kernels' most efficient one: 128 in
# FlashAttention-2's published H100 figures. Not measured here.
HEAD_WIDTH = 128
_HALF = (torch.float16, torch.bfloat16)


def _plain_graph() -> bool:
    """True while exporting or tracing, where the explicit formula is wanted in the graph."""
    return (torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()
            or torch.jit.is_scripting())


def _flush(t: torch.Tensor) -> torch.Tensor:
    """t with its entries below the smallest normal float of its dtype set to 0."""
    return t.masked_fill(t.abs() < torch.finfo(t.dtype).tiny, 0)


def flushed_softmax(energy: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``energy.softmax(dim)`` with its subnormal probabilities (and gradient entries) set to 0.

    A probability below the smallest normal float (1.2e-38 in float32) weighs a value vector
    by less than 1e-38 of its size, where the row's largest probability is at least 1/C: what
    it adds to an output is below float rounding, and so is what its gradient entry, p times
    a bounded factor, adds to the energies' gradient. The results are those of the plain
    softmax to rounding; the matrix products that read the probabilities or that gradient no
    longer meet subnormal operands (DANet's CAM on a (8, 256, 56, 56) map: 5 s a training step
    on a CPU with them, 0.3 s without). Only the small attention matrix is touched. (A custom
    autograd Function doing the same held one more feature map at the step's peak.)

    Subnormals are a CPU problem: GPUs multiply them at full speed, so off the CPU the plain
    softmax runs (rule ``'flushed_softmax'``; on an NVIDIA H200, DANet's CAM with the flushing
    and the fused Gram product was 1.17x slower than plain, issue #13).
    """
    if (_plain_graph() or torch.compiler.is_compiling()
            or select('flushed_softmax', energy) == 'plain'):
        return energy.softmax(dim)
    if energy.requires_grad:
        energy.register_hook(_flush_grad)
    return _flush(energy.softmax(dim))


def _flush_grad(g):
    # autograd hands hooks an undefined (None) gradient where no output's gradient reaches
    # the energies; there is nothing to flush then
    return None if g is None else _flush(g)


def _common_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """The dtype the explicit formula would compute in: autocast's (which leaves float64
    alone), else the promoted one."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    device = tensors[0].device.type
    if autocast_enabled(device) and dtype != torch.float64:
        return torch.get_autocast_dtype(device)
    return dtype


def _block_elements(device_type: str) -> int:
    """Elements of one block: the CPU's BLOCK_ELEMENTS, or CUDA_BLOCK_ELEMENTS elsewhere."""
    return BLOCK_ELEMENTS if device_type == 'cpu' else CUDA_BLOCK_ELEMENTS


def _blocking(batch: int, n_q: int, n_k: int, device_type: str = 'cpu'):
    """(samples, queries) per block: at least the device's minimum of queries of one sample
    (MIN_ROWS, CUDA_MIN_ROWS), more queries and then more samples while the block has at most
    the device's block elements."""
    elements = _block_elements(device_type)
    min_rows = MIN_ROWS if device_type == 'cpu' else CUDA_MIN_ROWS
    # at least one row: a map without queries has no blocks, not a zero step
    rows = max(1, min(n_q, max(min_rows, elements // max(1, n_k))))
    # at least one sample too: an empty batch has no blocks, not a zero step
    samples = max(1, min(batch, elements // max(1, rows * n_k)))
    return samples, rows


def _blocks(batch: int, n_q: int, blocking):
    """(sample slice, query slice, samples, queries) of every block."""
    samples, rows = blocking
    for b in range(0, batch, samples):
        nb = min(samples, batch - b)
        for s in range(0, n_q, rows):
            yield slice(b, b + nb), slice(s, s + rows), nb, min(rows, n_q - s)


def _explicit_fits(elements: int, dtype: torch.dtype = torch.float32) -> bool:
    """Away from the CPU: whether the explicit formula's three matrices of ``elements``
    elements of ``dtype`` fit CUDA_EXPLICIT_BYTES."""
    return 3 * elements * dtype.itemsize <= CUDA_EXPLICIT_BYTES


def _head_width(d: int, e: int) -> int:
    """The head width of 'sdpa_heads' for queries d wide and values e wide: at least d (the
    padded queries fit), a multiple of 8, HEAD_WIDTH when the values are wider."""
    return max(-(-d // 8) * 8, min(HEAD_WIDTH, -(-e // 8) * 8))


def choose_softmax_path(device_type: str, dtype: torch.dtype, batch: int, n_q: int, n_k: int,
                        d: int, e: int, needs_grad: bool) -> str:
    """The path :func:`softmax_attention` runs for q (batch, n_q, d), k (batch, n_k, d),
    v (batch, n_k, e) in ``dtype`` (autocast's, if on) on ``device_type``, with or without
    autograd. A plain function, so that the rule is testable without the device."""
    empty = n_q == 0 or n_k == 0
    if device_type == 'cpu':
        # CPU (README, "Pixel-to-pixel attention without the HWxHW matrix"): the fused kernel
        # stays lean only for equal widths, and its backward is 2-5x slower than the blocks'
        if d == e and not empty and not needs_grad:
            return 'sdpa'
        return 'blocked'
    if device_type == 'cuda' and dtype in _HALF and not empty and d <= MAX_HEAD_WIDTH:
        # H200, bfloat16, training step at 1x512x128x256: Non-local (widths 256) 11.5 ms
        # through SDPA (flash) against 28.3 ms explicit; PAM (widths 64 / 512) has no flash
        # kernel for one head, and the memory-efficient one took 116 ms for its attention
        # alone, so its values run as heads of equal width (issue #13)
        if d == e and d % 8 == 0:
            return 'sdpa'
        return 'sdpa_heads'
    # float32 (and wider) on a GPU: the fused kernels' float32 path (memory-efficient) is slow:
    # Non-local's step at 1x512x128x256 through it took 108 ms against 82 ms explicit, and one
    # head at 32768 queries 107 ms for the attention alone. The explicit formula and the blocks
    # are plain float32 products, as plain's. Explicit while its matrices fit the bound (no
    # recomputation), else blocks.
    return 'explicit' if _explicit_fits(batch * n_q * n_k, dtype) else 'blocked'


register_rule(
    'softmax_attention', ('explicit', 'sdpa', 'sdpa_heads', 'blocked'),
    lambda x, n_keys, value_width, needs_grad, dtype=None: choose_softmax_path(
        x.device.type, dtype or x.dtype, x.shape[0], x.shape[1], n_keys, x.shape[-1],
        value_width, needs_grad),
    reason="""CPU (2 cores, torch 2.13): 'sdpa' (flash) for equal widths in inference, else
    'blocked' by 32 MiB blocks (its backward is 2-5x slower than the blocks'). CUDA (H200,
    torch 2.11, issue #13), half precision: 'sdpa' for equal widths <= 256 (Non-local bf16
    11.5 ms against 28.3 ms explicit), 'sdpa_heads' for unequal ones (PAM: the one-head
    memory-efficient kernel took 116 ms); float32 and other devices: 'explicit' while its three
    matrices fit 1 GiB (Non-local at 8x256x56x56), else 'blocked' by blocks of at least 1024
    queries (DANet's step at 2x512x64x128 by blocks: 78% of mmseg's memory, 73.8 ms against
    72.5 ms; the CPU's 512-query blocks took 106 ms against the explicit 87 ms at
    1x512x128x256; Non-local through the fused float32 kernel 108 ms against 82 ms).""",
    # PAM in DANet's head at 1x512x128x256, training
    example=dict(shape=(1, 128 * 256, 64), n_keys=128 * 256, value_width=512, needs_grad=True))


def explicit_softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                               scale: float, values_first: bool = False) -> torch.Tensor:
    """``softmax(q k^T * scale) v`` written out; holds the (L x M) matrix.

    ``values_first`` forms the last product as ``(v^T p^T)^T``, as DANet's authors and mmseg
    write PAM: the result then lies (B, e, L) in memory, so that a channels-first caller's
    reshape is a view, while the softmax's backward reads a transposed gradient. Which order
    is faster depends on the module around it; the default is Non-local's (mmcv's ``p v``).
    """
    energy = torch.matmul(q, k.transpose(-2, -1))
    if scale != 1.0:
        energy = energy.mul_(scale)  # in place: the product's backward needs q and k only
    p = energy.softmax(dim=-1)
    if values_first:
        return torch.matmul(v.transpose(-2, -1), p.transpose(-2, -1)).transpose(-2, -1)
    return torch.matmul(p, v)


def softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
                      lean: bool = True, values_first: bool = False) -> torch.Tensor:
    """``softmax(q k^T * scale) v`` over the keys, for q (B, L, d), k (B, M, d), v (B, M, e).

    The path (explicit, fused kernel, heads of it, or blocks) is the ``'softmax_attention'``
    rule's choice (see :func:`choose_softmax_path`); all give the same numbers to rounding.

    Args:
        scale: a constant (the module's ``d**-0.5``, or 1.0 where the authors do not scale).
            Learnable factors (DANet's gamma) stay outside, in autograd's hands.
        lean: False gives the explicit formula (the reference the lean paths are tested
            against).
        values_first: the order of the explicit formula's last product (see
            :func:`explicit_softmax_attention`); the other paths do not hold the matrix.
    """
    if not lean or _plain_graph():
        return explicit_softmax_attention(q, k, v, scale, values_first)
    dtype = _common_dtype(q, k, v)
    needs_grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad
                                              or v.requires_grad)
    path = select('softmax_attention', q, n_keys=k.shape[1], value_width=v.shape[-1],
                  needs_grad=needs_grad, dtype=dtype)
    if path == 'explicit':
        return explicit_softmax_attention(q, k, v, scale, values_first)
    q, k, v = (t.to(dtype).contiguous() for t in (q, k, v))
    if path in ('sdpa', 'sdpa_heads') and q.shape[1] > 0 and k.shape[1] > 0:
        out = _fused_attention(q, k, v, scale, heads=path == 'sdpa_heads')
        if out is not None:
            return out
    blocking = _blocking(q.shape[0], q.shape[1], k.shape[1], q.device.type)
    if not needs_grad:
        with torch.no_grad():
            return _ChunkedSoftmaxAttention.forward(None, q, k, v, scale, blocking)
    return _ChunkedSoftmaxAttention.apply(q, k, v, scale, blocking)


_REJECTED = set()


def _fused_attention(q, k, v, scale, heads):
    """SDPA on contiguous q, k, v (one head, or heads of :func:`_sdpa_heads`); None where, on
    a GPU, no fused kernel takes the shape (the caller then runs blocks)."""
    if q.device.type not in _FUSED_ONLY:
        return _sdpa_heads(q, k, v, scale) if heads else _sdpa(q, k, v, scale)
    try:
        with warnings.catch_warnings():
            # torch warns of every kernel that declined before raising; the warning below
            # says it once, in our words
            warnings.simplefilter('ignore', UserWarning)
            with sdpa_kernel(_CUDA_SDPA_BACKENDS, set_priority=True):
                return _sdpa_heads(q, k, v, scale) if heads else _sdpa(q, k, v, scale)
    except torch.OutOfMemoryError:
        raise  # a RuntimeError too, but not a kernel declining the shape
    except RuntimeError as err:
        key = (q.dtype, q.shape[-1], v.shape[-1], heads)
        if key not in _REJECTED:
            _REJECTED.add(key)
            warnings.warn(f'softmax_attention: no fused attention kernel takes widths '
                          f'{q.shape[-1]} / {v.shape[-1]} in {q.dtype} on this GPU '
                          f'({str(err).splitlines()[0]}); running by blocks instead')
        return None


def _sdpa(q, k, v, scale):
    """One head: (B, L, d), (B, M, d), (B, M, e) -> (B, L, e)."""
    return F.scaled_dot_product_attention(
        q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), scale=scale).squeeze(1)


def _sdpa_heads(q, k, v, scale):
    """Attention with values e wide split into heads of width w = :func:`_head_width` (the
    last one zero-padded), every head seeing the same q and k zero-padded to w: zero columns
    add nothing to q . k, and zero value columns give output columns that are cut off. All
    four tensors have the (B, L, heads, w) layout the kernels share."""
    batch, n_q, d = q.shape
    n_k, e = v.shape[1], v.shape[-1]
    w = _head_width(d, e)
    heads = -(-e // w)
    if w != d:
        q, k = F.pad(q, (0, w - d)), F.pad(k, (0, w - d))
    if heads * w != e:
        v = F.pad(v, (0, heads * w - e))
    # q and k repeated per head: together as large as v, and a layout every kernel takes
    qh = q.unsqueeze(2).expand(batch, n_q, heads, w).contiguous().transpose(1, 2)
    kh = k.unsqueeze(2).expand(batch, n_k, heads, w).contiguous().transpose(1, 2)
    vh = v.view(batch, n_k, heads, w).transpose(1, 2)
    out = F.scaled_dot_product_attention(qh, kh, vh, scale=scale)  # (B, heads, L, w)
    out = out.transpose(1, 2).reshape(batch, n_q, heads * w)
    return out[..., :e] if heads * w != e else out


def choose_anchor_path(device_type: str, batch: int, n_q: int, n_k: int) -> str:
    """The path :func:`anchor_attention` runs (a plain function, testable without the
    device)."""
    if device_type == 'cpu':
        return 'sdpa'  # as these modules have run on the CPU (README's module tables)
    # A GPU: ANN's blocks through SDPA were 2.5x plain's step on an H200 (issue #13), the
    # cause not isolated; plain writes the formula out, and where nothing was measured faster
    # plain's ops are the default. The matrix (queries x a few keys) is smaller than the
    # values; only an unusually large one goes to the fused kernel for its memory.
    return 'explicit' if _explicit_fits(batch * n_q * n_k) else 'sdpa'


register_rule(
    'anchor_attention', ('explicit', 'sdpa'),
    lambda x, n_keys: choose_anchor_path(x.device.type, x.shape[0], x.shape[-2], n_keys),
    reason="""Attention of every pixel to a few keys (ANN's 110 pyramid anchors, OCR's object
    regions). CPU: 'sdpa', as measured in the module tables. Other devices: 'explicit' (plain's
    formula; AFNB and APNB with SDPA took 2.5x plain's step on an H200, cause not isolated,
    explicit not yet measured there), 'sdpa' only for matrices past the explicit formula's 1 GiB
    bound.""",
    example=dict(shape=(8, 56 * 56, 128), n_keys=110))  # APNB at (8, 256, 56, 56)


def anchor_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     scale: float) -> torch.Tensor:
    """``softmax(q k^T * scale) v`` for q (B, L, d), k (B, M, d), v (B, M, e) with few keys M:
    the (L x M) matrix is no larger than the values, so no blocking is needed. The path is the
    ``'anchor_attention'`` rule's (:func:`choose_anchor_path`)."""
    if _plain_graph() or select('anchor_attention', q, n_keys=k.shape[-2]) == 'explicit':
        return explicit_softmax_attention(q, k, v, scale)
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


def _wide(dtype: torch.dtype) -> torch.dtype:
    """Softmax statistics of half-precision inputs are kept in float32."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _buffer(blocking, n_q: int, n_keys: int, like: torch.Tensor,
            dtype: torch.dtype = None) -> torch.Tensor:
    """Flat storage for the largest block of ``blocking``."""
    samples, rows = blocking
    return torch.empty(samples * min(rows, n_q) * n_keys, dtype=dtype or like.dtype,
                       device=like.device)


def _block(flat: torch.Tensor, batch: int, rows: int, n_keys: int) -> torch.Tensor:
    """A contiguous (batch, rows, n_keys) view of the start of ``flat`` (also for the shorter
    last block, whose rows would not be contiguous as a slice of a 3-D buffer)."""
    return flat[:batch * rows * n_keys].view(batch, rows, n_keys)


def _bmm_into(buf: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` written into the preallocated block ``buf``."""
    if buf.dtype == a.dtype:
        return torch.bmm(a, b, out=buf)
    return buf.copy_(torch.bmm(a, b))


class _ChunkedSoftmaxAttention(torch.autograd.Function):
    """Softmax attention over blocks of queries, recomputing each block in the backward.

    Nothing of size L x M is saved: the backward recomputes each block's probabilities
    ``P = softmax(scale q k^T)`` and forms ``dV += P^T dO``, ``dS = softmax'(dO V^T)`` (PyTorch's
    fused softmax backward), ``dQ = scale dS K``, ``dK += dS^T (scale Q)``. The scale is folded
    into the queries once, and the softmax and its backward are PyTorch's fused kernels writing
    into preallocated blocks, so each block costs its matrix products plus one or two passes.
    """

    @staticmethod
    def forward(ctx, q, k, v, scale, blocking):
        wide = _wide(q.dtype)
        batch, n_q, n_k = q.shape[0], q.shape[1], k.shape[1]
        qs = q * scale if scale != 1.0 else q
        kt = k.transpose(1, 2).contiguous()
        out = v.new_empty(batch, n_q, v.shape[-1])
        e_buf = _buffer(blocking, n_q, n_k, q, wide)
        p_buf = torch.empty_like(e_buf)
        with autocast_off(q.device.type):
            for sb, sq, nb, n in _blocks(batch, n_q, blocking):
                e = _bmm_into(_block(e_buf, nb, n, n_k), qs[sb, sq], kt[sb])
                p = torch.ops.aten._softmax.out(e, -1, False, out=_block(p_buf, nb, n, n_k))
                out[sb, sq] = torch.bmm(p.to(v.dtype), v[sb])
        if ctx is not None:
            ctx.save_for_backward(qs, k, v)
            ctx.scale, ctx.blocking = scale, blocking
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dout):
        qs, k, v = ctx.saved_tensors
        scale, blocking = ctx.scale, ctx.blocking
        wide = _wide(qs.dtype)
        batch, n_q, n_k = qs.shape[0], qs.shape[1], k.shape[1]
        dout = dout.to(v.dtype)
        kt, vt = k.transpose(1, 2).contiguous(), v.transpose(1, 2).contiguous()
        dq = torch.empty_like(qs)
        dk = torch.zeros(k.shape, dtype=wide, device=k.device)
        dv = torch.zeros(v.shape, dtype=wide, device=v.device)
        bufs = [_buffer(blocking, n_q, n_k, qs, wide) for _ in range(3)]
        for sb, sq, nb, n in _blocks(batch, n_q, blocking):
            e_blk, p_blk, ds_blk = (_block(b, nb, n, n_k) for b in bufs)
            e = _bmm_into(e_blk, qs[sb, sq], kt[sb])
            p = torch.ops.aten._softmax.out(e, -1, False, out=p_blk)
            dv[sb].baddbmm_(p.transpose(1, 2), dout[sb, sq].to(wide))
            dp = _bmm_into(e_blk, dout[sb, sq], vt[sb])  # the energies are no longer needed
            ds = torch.ops.aten._softmax_backward_data.out(dp, p, -1, wide, grad_input=ds_blk)
            dq_blk = torch.bmm(ds.to(qs.dtype), k[sb])
            dq[sb, sq] = dq_blk.mul_(scale) if scale != 1.0 else dq_blk
            dk[sb].baddbmm_(ds.transpose(1, 2), qs[sb, sq].to(wide))
        return dq, dk.to(k.dtype), dv.to(v.dtype), None, None


def explicit_concat_attention(a: torch.Tensor, b: torch.Tensor,
                              g: torch.Tensor) -> torch.Tensor:
    """``ReLU(a_i + b_j) / M`` applied to g, written out; holds the (L x M) matrix."""
    return torch.matmul(torch.relu(a + b.transpose(1, 2)), g) / b.shape[1]


def choose_concat_path(device_type: str, batch: int, n_q: int, n_k: int,
                       dtype: torch.dtype = torch.float32) -> str:
    """The path :func:`concat_attention` runs for a (batch, n_q, 1), b (batch, n_k, 1) of
    ``dtype`` (autocast's, if on) on ``device_type`` (a plain function, testable without the
    device)."""
    if device_type == 'cpu':
        return 'blocked'  # README: 226 MiB against 863 MiB explicit, the same time
    # a GPU: the explicit formula (plain autograd ops, the default where nothing was measured
    # faster) while its matrices fit the bound, else blocks
    return 'explicit' if _explicit_fits(batch * n_q * n_k, dtype) else 'blocked'


register_rule(
    'concat_attention', ('explicit', 'blocked'),
    lambda x, n_keys, dtype=None: choose_concat_path(x.device.type, x.shape[0], x.shape[1],
                                                     n_keys, dtype or x.dtype),
    reason="""CPU: 'blocked' by 32 MiB blocks (Non-local at 1x512x64x128, training step: 226
    MiB against 863 MiB explicit, the same time). Other devices (not measured): 'explicit'
    while its three matrices fit 1 GiB, else 'blocked' by blocks of at least 1024 queries.""",
    example=dict(shape=(1, 128 * 256, 1), n_keys=128 * 256))  # Non-local, 1x512x128x256


def concat_attention(a: torch.Tensor, b: torch.Tensor, g: torch.Tensor,
                     lean: bool = True) -> torch.Tensor:
    """y_i = sum_j ReLU(a_i + b_j) g_j / M for a (B, L, 1), b (B, M, 1), g (B, M, e).

    Non-local's concatenation form, where ``a_i + b_j = w . [theta_i, phi_j]``. The lean path
    (the ``'concat_attention'`` rule's choice, :func:`choose_concat_path`) runs explicitly
    while the matrix is small, else by blocks of queries, recomputing each in the backward.
    """
    if not lean or _plain_graph():
        return explicit_concat_attention(a, b, g)
    if select('concat_attention', a, n_keys=b.shape[1],
              dtype=_common_dtype(a, b, g)) == 'explicit':
        return explicit_concat_attention(a, b, g)
    dtype = _common_dtype(a, b, g)
    a, b, g = (t.to(dtype).contiguous() for t in (a, b, g))
    blocking = _blocking(a.shape[0], a.shape[1], b.shape[1], a.device.type)
    if not (torch.is_grad_enabled() and (a.requires_grad or b.requires_grad or g.requires_grad)):
        with torch.no_grad():
            return _ChunkedConcatAttention.forward(None, a, b, g, blocking)
    return _ChunkedConcatAttention.apply(a, b, g, blocking)


class _ChunkedConcatAttention(torch.autograd.Function):
    """:func:`concat_attention` by blocks of queries; the backward recomputes each block's
    F = ReLU(a_i + b_j) and forms ``dg += F^T dy / M``, ``dR = (dy g^T / M) [F > 0]``,
    ``da = rowsum(dR)``, ``db += colsum(dR)``."""

    @staticmethod
    def forward(ctx, a, b, g, blocking):
        batch, n_q, n_k = a.shape[0], a.shape[1], b.shape[1]
        out = g.new_empty(batch, n_q, g.shape[-1])
        bt = b.transpose(1, 2)
        buf = _buffer(blocking, n_q, n_k, a)
        with autocast_off(a.device.type):
            for sb, sq, nb, n in _blocks(batch, n_q, blocking):
                f = torch.add(a[sb, sq], bt[sb], out=_block(buf, nb, n, n_k)).relu_()
                out[sb, sq] = torch.bmm(f, g[sb]).div_(n_k)
        if ctx is not None:
            ctx.save_for_backward(a, b, g)
            ctx.blocking = blocking
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dout):
        a, b, g = ctx.saved_tensors
        blocking = ctx.blocking
        batch, n_q, n_k = a.shape[0], a.shape[1], b.shape[1]
        dout = dout.to(g.dtype) / n_k
        bt, gt = b.transpose(1, 2), g.transpose(1, 2)
        da = torch.empty_like(a)
        db = torch.zeros_like(bt)
        dg = torch.zeros_like(g)
        f_buf = _buffer(blocking, n_q, n_k, a)
        dr_buf = torch.empty_like(f_buf)
        for sb, sq, nb, n in _blocks(batch, n_q, blocking):
            f = torch.add(a[sb, sq], bt[sb], out=_block(f_buf, nb, n, n_k)).relu_()
            dg[sb].baddbmm_(f.transpose(1, 2), dout[sb, sq])
            dr = _bmm_into(_block(dr_buf, nb, n, n_k), dout[sb, sq], gt[sb]).mul_(f.sign_())
            da[sb, sq] = dr.sum(-1, keepdim=True)
            db[sb].add_(dr.sum(1, keepdim=True))
        return da, db.transpose(1, 2), dg, None


# -- where flushed_softmax flushes (python -m mmattn paths) ---------------------------------
register_rule(
    'flushed_softmax', ('plain', 'flushed'), cpu_only('flushed'),
    reason='Subnormal probabilities set to 0 (forward and gradient). CPU (1 thread, float32, '
    "training step at (8, 256, 56, 56), README): DANet's CAM 3.33 s plain, 0.18 s with it and "
    'the fused Gram product (x86 multiplies subnormals 10-100x slower). GPUs handle '
    "subnormals at full speed; NVIDIA H200 (issue #13): CAM 1.17x plain with both: plain "
    'softmax off the CPU.')
