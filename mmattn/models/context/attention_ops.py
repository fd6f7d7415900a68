"""Pixel-to-pixel attention without an HW x HW matrix in memory.

The self-attention modules of this family (Non-local, DANet's PAM) relate every position to
every other. Written out, ``softmax(q k^T) v`` holds an (HW x HW) matrix, and autograd keeps it
and its softmax for the backward: 4 GiB each for one 128 x 256 feature map in float32. The
functions here give the same numbers while holding O(HW) memory (plus a bounded block).

Which path runs, and why (measured with torch 2.13 on CPU, peak RSS of a fresh process):

- ``F.scaled_dot_product_attention`` uses its fused (flash) CPU kernel only when the query,
  key and value widths are equal **and** the inputs are contiguous in memory; otherwise it falls
  back, silently, to the math kernel, which builds the full matrix (PAM's C/8-wide queries
  against C-wide values; a transposed (N, HW, C) view of a conv output). Inputs are therefore
  made contiguous here, and the fused kernel is used for equal widths in inference and on GPUs.
- On CPU, that kernel's backward is 2-5x slower than the explicit one (it runs one thread per
  batch x head), and unequal widths cannot use it at all. For those cases attention runs by
  blocks of queries (:class:`_ChunkedSoftmaxAttention`): each block of queries sees all keys,
  and the backward recomputes each block's probabilities instead of keeping them.
- Non-local's concatenation form, ReLU(a_i + b_j) / M (no softmax), runs block by block with
  the same recompute-in-backward scheme (:func:`concat_attention`).
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

import torch
import torch.nn.functional as F

__all__ = [
    'softmax_attention', 'concat_attention', 'explicit_softmax_attention',
    'explicit_concat_attention', 'flushed_softmax'
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
            or _select('flushed_softmax', energy) == 'plain'):
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
    if torch.is_autocast_enabled(device) and dtype != torch.float64:
        return torch.get_autocast_dtype(device)
    return dtype


def _blocking(batch: int, n_q: int, n_k: int):
    """(samples, queries) per block: at least MIN_ROWS queries of one sample, more queries and
    then more samples while the block has at most BLOCK_ELEMENTS elements."""
    rows = min(n_q, max(MIN_ROWS, BLOCK_ELEMENTS // max(1, n_k)))
    samples = min(batch, max(1, BLOCK_ELEMENTS // max(1, rows * n_k)))
    return samples, rows


def _blocks(batch: int, n_q: int, blocking):
    """(sample slice, query slice, samples, queries) of every block."""
    samples, rows = blocking
    for b in range(0, batch, samples):
        nb = min(samples, batch - b)
        for s in range(0, n_q, rows):
            yield slice(b, b + nb), slice(s, s + rows), nb, min(rows, n_q - s)


def explicit_softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                               scale: float) -> torch.Tensor:
    """``softmax(q k^T * scale) v`` written out; holds the (L x M) matrix."""
    energy = torch.matmul(q, k.transpose(-2, -1))
    if scale != 1.0:
        energy = energy.mul_(scale)  # in place: the product's backward needs q and k only
    return torch.matmul(energy.softmax(dim=-1), v)


def softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
                      lean: bool = True) -> torch.Tensor:
    """``softmax(q k^T * scale) v`` over the keys, for q (B, L, d), k (B, M, d), v (B, M, e).

    Args:
        scale: a constant (the module's ``d**-0.5``, or 1.0 where the authors do not scale).
            Learnable factors (DANet's gamma) stay outside, in autograd's hands.
        lean: False gives the explicit formula (the reference the lean paths are tested
            against).
    """
    if not lean or _plain_graph():
        return explicit_softmax_attention(q, k, v, scale)
    dtype = _common_dtype(q, k, v)
    q, k, v = (t.to(dtype).contiguous() for t in (q, k, v))
    needs_grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad
                                              or v.requires_grad)
    fused_ok = q.shape[-1] == v.shape[-1] and q.shape[1] > 0 and k.shape[1] > 0
    if fused_ok and not (needs_grad and q.device.type == 'cpu'):
        # (B, 1, L, d): one head. Contiguous inputs of equal widths keep the fused kernel.
        return F.scaled_dot_product_attention(
            q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), scale=scale).squeeze(1)
    blocking = _blocking(q.shape[0], q.shape[1], k.shape[1])
    if not needs_grad:
        with torch.no_grad():
            return _ChunkedSoftmaxAttention.forward(None, q, k, v, scale, blocking)
    return _ChunkedSoftmaxAttention.apply(q, k, v, scale, blocking)


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
        with torch.autocast(q.device.type, enabled=False):
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


def concat_attention(a: torch.Tensor, b: torch.Tensor, g: torch.Tensor,
                     lean: bool = True) -> torch.Tensor:
    """y_i = sum_j ReLU(a_i + b_j) g_j / M for a (B, L, 1), b (B, M, 1), g (B, M, e).

    Non-local's concatenation form, where ``a_i + b_j = w . [theta_i, phi_j]``. The lean path
    runs by blocks of queries and recomputes each block in the backward.
    """
    if not lean or _plain_graph():
        return explicit_concat_attention(a, b, g)
    dtype = _common_dtype(a, b, g)
    a, b, g = (t.to(dtype).contiguous() for t in (a, b, g))
    blocking = _blocking(a.shape[0], a.shape[1], b.shape[1])
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
        with torch.autocast(a.device.type, enabled=False):
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
# imported here, beside the rule, so that this file's other edits stay apart from these lines
from ..dispatch import register_rule as _register_rule  # noqa: E402
from ..dispatch import select as _select  # noqa: E402
from ..ops import cpu_only as _cpu_only  # noqa: E402

_register_rule(
    'flushed_softmax', ('plain', 'flushed'), _cpu_only('flushed'),
    reason='Subnormal probabilities set to 0 (forward and gradient). CPU (1 thread, float32, '
    "training step at (8, 256, 56, 56), README): DANet's CAM 3.33 s plain, 0.18 s with it and "
    'the fused Gram product (x86 multiplies subnormals 10-100x slower). GPUs handle '
    "subnormals at full speed; NVIDIA H200 (issue #13): CAM 1.17x plain with both: plain "
    'softmax off the CPU.')
