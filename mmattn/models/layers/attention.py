"""Softmax and concatenation attention without the (queries x keys) matrix in memory.

The self-attention modules (Non-local, DANet's PAM, the DA head) relate every position to every
other. Written out, ``softmax(q k^T) v`` holds an HW x HW matrix, and autograd keeps it and its
softmax for the backward: 4 GiB each for one 128 x 256 feature map in float32.
:func:`softmax_attention` and :func:`concat_attention` give the same numbers while holding
O(HW) memory plus a bounded block, by one of four paths:

- ``'explicit'``: the formula written out (:func:`explicit_softmax_attention`,
  :func:`explicit_concat_attention`), PyTorch's plain products.
- ``'blocked'``: by blocks of queries. Each block sees all keys, and the backward recomputes a
  block's probabilities instead of keeping them (:class:`_BlockedSoftmaxAttention`,
  :class:`_BlockedConcatAttention`).
- ``'sdpa'``: ``F.scaled_dot_product_attention``, one head. Its fused kernels hold O(HW)
  memory only for equal query and value widths and contiguous inputs; otherwise PyTorch falls
  back, silently, to a kernel that builds the matrix. Inputs are therefore made contiguous.
- ``'sdpa_heads'``: the same kernels for unequal widths (PAM's C/8-wide queries against C-wide
  values): the value channels are split into heads that share q and k, and q and k are
  zero-padded to the head width (zero columns add nothing to q . k; the scale is passed
  explicitly).

:func:`attention_path` chooses the path from the device type, the dtype and the sizes; it is a
plain function of those, so its choices are tested without the device. ``lean=False`` gives the
explicit formula, and so does a graph being captured for export (tracing, scripting, ONNX
export), so that the graph holds the operators every runtime has. The measurements behind the
bounds are in ``docs/en/advanced_guides/lean_attention.md``.
"""
import warnings

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..utils import autocast_enabled, autocast_off

__all__ = [
    'PATHS', 'attention_path', 'softmax_attention', 'concat_attention',
    'explicit_softmax_attention', 'explicit_concat_attention'
]

PATHS = ('explicit', 'blocked', 'sdpa', 'sdpa_heads')

# CPU blocks: at most BLOCK_ELEMENTS elements (32 MiB in float32; the backward holds three
# blocks) and at least MIN_ROWS queries of one sample, since each block's products re-pack the
# whole key and value matrices and smaller blocks spend their time packing.
BLOCK_ELEMENTS = 1 << 23
MIN_ROWS = 512

# The explicit formula's three matrices at the backward's peak must fit EXPLICIT_BYTES where it
# is chosen for their size: on a GPU, and for a few keys on every device.
EXPLICIT_BYTES = 1 << 30
# GPU blocks: at most CUDA_BLOCK_ELEMENTS elements and at least CUDA_MIN_ROWS queries (larger
# than the CPU's: a kernel launch per small product costs more than on a CPU)
CUDA_BLOCK_ELEMENTS = 1 << 23
CUDA_MIN_ROWS = 1024

# flash and cuDNN attention take equal q/k/v widths of at most 256, multiples of 8
MAX_HEAD_WIDTH = 256
# the head width of 'sdpa_heads' where the values are wider: any width at least the queries'
# does the same number of products; 128 is the kernels' most efficient one
HEAD_WIDTH = 128

# The fused kernels the SDPA paths may take on a GPU, fastest first. All hold O(HW) memory; the
# math kernel, which builds the matrix, is left out, so that a shape none of them takes raises
# (and runs by blocks) instead of silently needing the explicit formula's memory.
_CUDA_SDPA_BACKENDS = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION,
                       SDPBackend.EFFICIENT_ATTENTION]
_FUSED_ONLY = ('cuda', )  # devices whose SDPA paths are restricted to those kernels
_HALF = (torch.float16, torch.bfloat16)


def attention_path(device_type: str, dtype: torch.dtype, batch: int, n_q: int, n_k: int,
                   qk_width: int, v_width: int, needs_grad: bool, form: str = 'softmax') -> str:
    """The path of attention over q (batch, n_q, qk_width), k (batch, n_k, qk_width) and values
    (batch, n_k, v_width) computed in ``dtype`` (autocast's, if on) on ``device_type``, with
    or without autograd: ``'explicit'``, ``'blocked'``, ``'sdpa'`` or ``'sdpa_heads'``.

    ``form='concat'`` asks for Non-local's concatenation form (:func:`concat_attention`, no
    softmax), which has the explicit and the blocked path only.

    - A matrix no larger than the values (``n_k <= v_width``: ANN's 110 anchors, OCR's
      regions) is computed explicitly on every device, there being nothing to save, unless
      its three matrices are past ``EXPLICIT_BYTES``.
    - CPU: ``'sdpa'`` for equal widths without autograd (its backward is several times slower
      than the blocks'), else ``'blocked'``.
    - CUDA in half precision, queries at most ``MAX_HEAD_WIDTH`` wide: ``'sdpa'`` for equal
      widths that are multiples of 8, else ``'sdpa_heads'``.
    - Otherwise (float32 and wider on a GPU, other devices): ``'explicit'`` while its three
      matrices fit ``EXPLICIT_BYTES``, else ``'blocked'``.
    """
    if form not in ('softmax', 'concat'):
        raise ValueError(f"attention_path: form must be 'softmax' or 'concat', got {form!r}")
    explicit_fits = 3 * batch * n_q * n_k * dtype.itemsize <= EXPLICIT_BYTES
    if n_k <= v_width and explicit_fits:
        return 'explicit'
    softmax = form == 'softmax'
    if device_type == 'cpu':
        if softmax and qk_width == v_width and n_q > 0 and not needs_grad:
            return 'sdpa'
        return 'blocked'
    if (softmax and device_type == 'cuda' and dtype in _HALF and n_q > 0
            and qk_width <= MAX_HEAD_WIDTH):
        return 'sdpa' if qk_width == v_width and qk_width % 8 == 0 else 'sdpa_heads'
    return 'explicit' if explicit_fits else 'blocked'


def explicit_softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                               scale: float, values_first: bool = False) -> torch.Tensor:
    """``softmax(q k^T * scale) v`` written out; holds the (L x M) matrix.

    ``values_first`` forms the last product as ``(v^T p^T)^T``, as DANet's authors and mmseg
    write PAM: the result then lies (B, e, L) in memory, so that a channels-first caller's
    reshape is a view. The default is Non-local's order (mmcv's ``p v``).
    """
    energy = torch.matmul(q, k.transpose(-2, -1))
    if scale != 1.0:
        energy = energy.mul_(scale)  # in place: the product's backward needs q and k only
    p = energy.softmax(dim=-1)
    if values_first:
        return torch.matmul(v.transpose(-2, -1), p.transpose(-2, -1)).transpose(-2, -1)
    return torch.matmul(p, v)


def softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
                      lean: bool = True, values_first: bool = False,
                      path: str = None) -> torch.Tensor:
    """``softmax(q k^T * scale) v`` over the keys, for q (B, L, d), k (B, M, d), v (B, M, e).

    Every path gives the same numbers to rounding.

    Args:
        scale: a constant (the module's ``d**-0.5``, or 1.0 where the authors do not scale).
            Learnable factors (DANet's gamma) stay outside, in autograd's hands.
        lean: False gives the explicit formula.
        values_first: the order of the explicit formula's last product (see
            :func:`explicit_softmax_attention`); the other paths do not hold the matrix.
        path: run this path (one of :data:`PATHS`) instead of :func:`attention_path`'s.
    """
    if path is None:
        if not lean or _exporting():
            path = 'explicit'
        else:
            path = attention_path(q.device.type, _compute_dtype(q, k, v), q.shape[0],
                                  q.shape[1], k.shape[1], q.shape[-1], v.shape[-1],
                                  _needs_grad(q, k, v))
    elif path not in PATHS:
        raise ValueError(f'softmax_attention: path must be one of {PATHS}, got {path!r}')
    if path == 'explicit':
        return explicit_softmax_attention(q, k, v, scale, values_first)
    needs_grad = _needs_grad(q, k, v)
    dtype = _compute_dtype(q, k, v)
    q, k, v = (t.to(dtype).contiguous() for t in (q, k, v))
    if path in ('sdpa', 'sdpa_heads') and q.shape[1] > 0 and k.shape[1] > 0:
        out = _fused_attention(q, k, v, scale, heads=path == 'sdpa_heads')
        if out is not None:
            return out
    blocking = _blocking(q.shape[0], q.shape[1], k.shape[1], q.device.type)
    if not needs_grad:
        with torch.no_grad():
            return _BlockedSoftmaxAttention.forward(None, q, k, v, scale, blocking)
    return _BlockedSoftmaxAttention.apply(q, k, v, scale, blocking)


def explicit_concat_attention(a: torch.Tensor, b: torch.Tensor,
                              g: torch.Tensor) -> torch.Tensor:
    """``ReLU(a_i + b_j) / M`` applied to g, written out; holds the (L x M) matrix."""
    return torch.matmul(torch.relu(a + b.transpose(1, 2)), g) / b.shape[1]


def concat_attention(a: torch.Tensor, b: torch.Tensor, g: torch.Tensor, lean: bool = True,
                     path: str = None) -> torch.Tensor:
    """y_i = sum_j ReLU(a_i + b_j) g_j / M for a (B, L, 1), b (B, M, 1), g (B, M, e).

    Non-local's concatenation form, where ``a_i + b_j = w . [theta_i, phi_j]``. ``lean=False``
    gives the explicit formula; ``path`` (``'explicit'`` or ``'blocked'``) runs that path
    instead of :func:`attention_path`'s.
    """
    if path is None:
        if not lean or _exporting():
            path = 'explicit'
        else:
            path = attention_path(a.device.type, _compute_dtype(a, b, g), a.shape[0],
                                  a.shape[1], b.shape[1], 1, g.shape[-1], _needs_grad(a, b, g),
                                  form='concat')
    elif path not in ('explicit', 'blocked'):
        raise ValueError(f"concat_attention: path must be 'explicit' or 'blocked', "
                         f'got {path!r}')
    if path == 'explicit':
        return explicit_concat_attention(a, b, g)
    needs_grad = _needs_grad(a, b, g)
    dtype = _compute_dtype(a, b, g)
    a, b, g = (t.to(dtype).contiguous() for t in (a, b, g))
    blocking = _blocking(a.shape[0], a.shape[1], b.shape[1], a.device.type)
    if not needs_grad:
        with torch.no_grad():
            return _BlockedConcatAttention.forward(None, a, b, g, blocking)
    return _BlockedConcatAttention.apply(a, b, g, blocking)


# -- helpers ----------------------------------------------------------------------------------
def _exporting() -> bool:
    """Whether a graph is being captured for export (tracing, scripting, ONNX export), which
    must hold the explicit formula's operators."""
    return (torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()
            or torch.jit.is_scripting())


def _needs_grad(*tensors: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """The dtype the explicit formula would compute in: autocast's (which leaves float64
    alone), else the promoted one."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    device = tensors[0].device.type
    if autocast_enabled(device) and dtype != torch.float64:
        return torch.get_autocast_dtype(device)
    return dtype


def _blocking(batch: int, n_q: int, n_k: int, device_type: str = 'cpu'):
    """(samples, queries) per block: at least the device's minimum of queries of one sample
    (MIN_ROWS, CUDA_MIN_ROWS), more queries and then more samples while the block has at most
    the device's block elements."""
    cpu = device_type == 'cpu'
    elements = BLOCK_ELEMENTS if cpu else CUDA_BLOCK_ELEMENTS
    min_rows = MIN_ROWS if cpu else CUDA_MIN_ROWS
    # at least one query and one sample: an empty map or batch has no blocks, not a zero step
    rows = max(1, min(n_q, max(min_rows, elements // max(1, n_k))))
    samples = max(1, min(batch, elements // max(1, rows * n_k)))
    return samples, rows


def _blocks(batch: int, n_q: int, blocking):
    """(sample slice, query slice, samples, queries) of every block."""
    samples, rows = blocking
    for b in range(0, batch, samples):
        nb = min(samples, batch - b)
        for s in range(0, n_q, rows):
            yield slice(b, b + nb), slice(s, s + rows), nb, min(rows, n_q - s)


# -- fused kernels ----------------------------------------------------------------------------
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


def _head_width(d: int, e: int) -> int:
    """The head width of 'sdpa_heads' for queries d wide and values e wide: at least d (the
    padded queries fit), a multiple of 8, HEAD_WIDTH when the values are wider."""
    return max(-(-d // 8) * 8, min(HEAD_WIDTH, -(-e // 8) * 8))


def _sdpa_heads(q, k, v, scale):
    """Attention with values e wide split into heads of width w = :func:`_head_width` (the
    last one zero-padded), every head seeing the same q and k zero-padded to w: zero columns
    add nothing to q . k, and zero value columns give output columns that are cut off. All
    four tensors have the (B, heads, L, w) layout the kernels share."""
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


# -- blocks -----------------------------------------------------------------------------------
# Per-block temporaries live in buffers allocated once per call: fresh multi-MiB blocks
# interleaved with small tensors fragment glibc's heap, whose resident size then grows by
# hundreds of MiB over a few hundred blocks.
def _wide(dtype: torch.dtype) -> torch.dtype:
    """Softmax statistics of half-precision inputs are kept in float32."""
    return torch.float32 if dtype in _HALF else dtype


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


class _BlockedSoftmaxAttention(torch.autograd.Function):
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


class _BlockedConcatAttention(torch.autograd.Function):
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
