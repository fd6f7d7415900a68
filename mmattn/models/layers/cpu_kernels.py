"""The CPU fast paths: a few modules' formulas, implemented to train markedly faster on a CPU.

A module calls one of these only where :func:`~mmattn.models.layers.use_fast_path` is true for
its input (the switch on, the input on the CPU, no graph being captured), and otherwise runs
its formula in plain PyTorch, in its own ``forward``::

    if use_fast_path(x):
        return cpu_kernels.simam(x, self.e_lambda)
    ...  # the authors' formula

Each function computes what the plain formula computes, to float rounding; tests compare them
in float64, values and gradients, with the switch off. What each one saves, and why it is not
used elsewhere, is in ``docs/en/advanced_guides/fast_paths.md``.

- :func:`simam`: SimAM as two kernels compiled by ``torch.compile`` (:class:`CompiledKernel`),
  the forward and a hand-derived backward.
- :func:`criss_cross`: one criss-cross pass as one autograd Function over channels-last q, k, v.
- :func:`gram`: channel attention's Gram product with a one-product backward (DANet's CAM);
  :func:`flushed_softmax`: a softmax that sets its subnormal probabilities to 0
  (DANet's CAM).
- :func:`part_pool`: the spatial IAU's part sums and global average as one product.
- :func:`regrouped_relations`: RGA's relation conv applied to the embeddings, never to the
  relation vectors.
"""
import warnings

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = [
    'CompiledKernel', 'SIMAM_MIN_ELEMENTS', 'simam', 'criss_cross', 'gram', 'flushed_softmax',
    'part_pool', 'regrouped_relations'
]


# -- SimAM: two compiled kernels --------------------------------------------------------------
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


# Below this many elements a kernel call's overhead (guards, the autograd Function) outweighs
# the memory traffic it saves; SimAM runs its plain formula there.
SIMAM_MIN_ELEMENTS = 1 << 16


def _simam_forward(x: Tensor, e_lambda: float):
    """SimAM's output, and the per-channel mean and k = 1 / (4 (sum(d) / n + lambda)) that the
    backward needs (so that it saves nothing full-size but x). ``d * k`` stands for the
    authors' ``d / (4 (...))``: equal to rounding, a multiplication instead of a division."""
    n = max(x.shape[2] * x.shape[3] - 1, 1)
    mu = x.mean(dim=(2, 3), keepdim=True)
    d = (x - mu).pow(2)
    k = 0.25 / (d.sum(dim=(2, 3), keepdim=True) / n + e_lambda)
    return x * torch.sigmoid(d * k + 0.5), mu, k


def _simam_backward(x: Tensor, gy: Tensor, mu: Tensor, k: Tensor) -> Tensor:
    """grad_x of ``x * sigmoid(k d + 1/2)``, d = (x - mu)^2, k = 1 / (4 (sum(d) / n + lambda)).

    With s = sigmoid(k d + 1/2), r = gy x s (1 - s), and the per-channel sums A = sum(r (x - mu))
    and B = sum(r d) over the N = H W positions (the mean's derivative is 1/N, sum(d)'s is
    2 (x - mu), k's is -8 k^2 (x - mu) / n):

        grad_x = gy s + (x - mu) (2 k r - 8 k^2 B / n) - 2 k A / N.

    Two fused loops over x and gy (the sums, then grad_x), where autograd's derivative of the
    op-by-op formula writes about ten full-size temporaries.
    """
    size = x.shape[2] * x.shape[3]
    n = max(size - 1, 1)
    xm = x - mu
    d = xm * xm
    s = torch.sigmoid(d * k + 0.5)
    r = gy * x * s * (1 - s)
    a = (r * xm).sum(dim=(2, 3), keepdim=True)
    b = (r * d).sum(dim=(2, 3), keepdim=True)
    return gy * s + xm * (2 * k * r - (8 / n) * k * k * b) - (2 / size) * k * a


simam_forward_kernel = CompiledKernel(_simam_forward, 'SimAM')
simam_backward_kernel = CompiledKernel(_simam_backward, 'SimAM')


class _SimAM(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, e_lambda):
        out, mu, k = simam_forward_kernel(x, e_lambda)
        ctx.save_for_backward(x, mu, k)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):
        x, mu, k = ctx.saved_tensors
        return simam_backward_kernel(x, gy.contiguous(), mu, k), None


def simam(x: Tensor, e_lambda: float) -> Tensor:
    """SimAM's ``x * sigmoid(d / (4 (sum(d) / n + lambda)) + 0.5)`` (n clamped to 1 at 1x1, as
    the module) as one compiled kernel forward and one backward: about 2 and 6 passes over the
    map where the op-by-op formula takes about 9 and 34. Double backward is not supported."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _SimAM.apply(x, e_lambda)
    # the kernel compiled for the Function's forward (grad mode off) serves here too, instead
    # of a second compile for grad mode on (a frozen stage in training)
    with torch.no_grad():
        return simam_forward_kernel(x, e_lambda)[0]


# -- criss-cross attention: one autograd Function per pass --------------------------------------
# PyTorch's products on NCHW tensors transpose the value map and the output several times per
# pass, and autograd's backward then adds gradients that arrive in different layouts, which the
# CPU does several times slower than a contiguous add. Here the three 1x1 convs are one matrix
# product that writes q, k, v channels-last (N, H, W, C) directly, every product over rows and
# columns reads strided views of those, and the backward returns grad_x from one product.
def _energies(a: Tensor, b: Tensor) -> Tensor:
    """(N, H, W, H + W): each pixel's vector in ``a`` dotted with the vectors of ``b`` in its
    column (first H, itself included) and in its row (last W); ``a``, ``b`` (N, H, W, C)."""
    n, h, w, c = a.shape
    out = a.new_empty(n, h, w, h + w)
    torch.bmm(a.reshape(n * h, w, c), b.reshape(n * h, w, c).transpose(1, 2),
              out=out[..., h:].view(n * h, w, w))
    for i in range(n):  # columns: batched over the W columns of one image (strided views)
        torch.bmm(a[i].transpose(0, 1), b[i].permute(1, 2, 0),
                  out=out[i, :, :, :h].transpose(0, 1))
    return out


def _gather(p: Tensor, b: Tensor, out: Tensor) -> Tensor:
    """out[n, h, w] = sum_g p[n, h, w, g] b[n, g, w] + sum_v p[n, h, w, H + v] b[n, h, v]."""
    n, h, w, c = b.shape
    for i in range(n):
        torch.bmm(p[i, :, :, :h].transpose(0, 1), b[i].transpose(0, 1),
                  out=out[i].transpose(0, 1))
    out.view(n * h, w, c).baddbmm_(p[..., h:].view(n * h, w, w), b.reshape(n * h, w, c))
    return out


def _scatter(p: Tensor, b: Tensor, out: Tensor) -> Tensor:
    """The transpose of :func:`_gather`: out[n, g, w] = sum_h p[n, h, w, g] b[n, h, w] plus
    out[n, h, v] = sum_w p[n, h, w, H + v] b[n, h, w]."""
    n, h, w, c = b.shape
    for i in range(n):
        torch.bmm(p[i, :, :, :h].permute(1, 2, 0), b[i].transpose(0, 1),
                  out=out[i].transpose(0, 1))
    out.view(n * h, w, c).baddbmm_(p[..., h:].view(n * h, w, w).transpose(1, 2),
                                   b.reshape(n * h, w, c))
    return out


def _split_qkv(qkv: Tensor, key_channels: int):
    return qkv[..., :key_channels], qkv[..., key_channels:2 * key_channels], \
        qkv[..., 2 * key_channels:]


class _CrissCross(torch.autograd.Function):
    """``x + gamma * criss_cross_attention(conv_q(x), conv_k(x), conv_v(x))``, the three 1x1
    convs given as one (Cq + Ck + C, C) weight and its bias."""

    @staticmethod
    def forward(ctx, x, weight, bias, gamma, key_channels):
        x = x.contiguous()
        n, c, h, w = x.shape
        c2 = weight.shape[0]
        qkv = torch.baddbmm(bias.expand(n, h * w, c2), x.reshape(n, c, h * w).transpose(1, 2),
                            weight.t().expand(n, c, c2)).view(n, h, w, c2)
        q, k, v = _split_qkv(qkv, key_channels)
        energy = _energies(q, k)
        energy[..., :h].diagonal(dim1=1, dim2=3).fill_(float('-inf'))  # the pixel, once
        attn = torch.softmax(energy, dim=-1)
        out = _gather(attn, v, x.new_empty(n, h, w, c))
        ctx.key_channels = key_channels
        ctx.save_for_backward(x, weight, gamma, qkv, attn)
        return torch.addcmul(x, gamma, out.permute(0, 3, 1, 2).contiguous())

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):
        x, weight, gamma, qkv, attn = ctx.saved_tensors
        n, c, h, w = x.shape
        c2 = weight.shape[0]
        q, k, v = _split_qkv(qkv, ctx.key_channels)
        gy = gy.contiguous()
        gy_l = gy.permute(0, 2, 3, 1).contiguous()
        g_attn = _energies(gy_l, v)
        g_qkv = torch.empty_like(qkv)
        gq, gk, gv = _split_qkv(g_qkv, ctx.key_channels)
        _scatter(attn, gy_l, gv)  # A^T gy; times gamma below
        # <gy, out> = <gy, A v> = <A^T gy, v>: gamma's gradient without the saved output
        g_gamma = (gv * v).sum().reshape(gamma.shape)
        g_energy = attn * (g_attn - (g_attn * attn).sum(dim=-1, keepdim=True))
        g_energy.mul_(gamma)  # masked entries: attn = 0, so 0 here
        _gather(g_energy, k, gq)
        _scatter(g_energy, q, gk)
        gv.mul_(gamma)
        g_flat = g_qkv.view(n, h * w, c2)
        x_flat = x.view(n, c, h * w)
        g_weight = torch.bmm(g_flat.transpose(1, 2), x_flat.transpose(1, 2)).sum(0)
        g_bias = g_flat.sum((0, 1))
        gx = torch.baddbmm(gy.view(n, c, h * w), weight.t().expand(n, c, c2),
                           g_flat.transpose(1, 2))
        return gx.view(n, c, h, w), g_weight, g_bias, g_gamma, None


def criss_cross(x: Tensor, convs, gamma: Tensor, key_channels: int) -> Tensor:
    """One criss-cross pass, ``x + gamma * (column part + row part)``, with q, k, v from the
    three 1x1 ``convs`` (query, key, value; their weights are read, the modules not called),
    as one autograd Function with a hand-written backward. Double backward is not supported.
    """
    weight = torch.cat([conv.weight.flatten(1) for conv in convs])
    bias = torch.cat([conv.bias for conv in convs])
    return _CrissCross.apply(x, weight, bias, gamma, key_channels)


# -- channel attention: the Gram product and the flushed softmax --------------------------------
class _Gram(torch.autograd.Function):

    @staticmethod
    def forward(ctx, f):
        ctx.save_for_backward(f)
        return torch.bmm(f, f.transpose(1, 2))

    @staticmethod
    def backward(ctx, g):
        f, = ctx.saved_tensors
        return torch.bmm(g + g.transpose(1, 2), f)


def gram(f: Tensor) -> Tensor:
    """``torch.bmm(f, f.transpose(1, 2))`` for ``f`` (N, C, M), whose backward is one product,
    ``(G + G^T) f``, written in ``f``'s layout.

    Autograd's backward of the bmm treats the two operands apart: ``G f``, and ``f^T G``
    written as (N, M, C) and added to the first through a transposed view, an add the CPU does
    several times slower than a contiguous one. Double backward works (the backward is plain
    differentiable ops).
    """
    return _Gram.apply(f)


def _flush(t: Tensor) -> Tensor:
    """t with its entries below the smallest normal float of its dtype set to 0."""
    return t.masked_fill(t.abs() < torch.finfo(t.dtype).tiny, 0)


def _flush_grad(g):
    # autograd hands hooks an undefined (None) gradient where no output's gradient reaches
    # the energies; there is nothing to flush then
    return None if g is None else _flush(g)


def flushed_softmax(energy: Tensor, dim: int = -1) -> Tensor:
    """``energy.softmax(dim)`` with its subnormal probabilities, and the subnormal entries of
    the energies' gradient, set to 0.

    A probability below the smallest normal float (1.2e-38 in float32) weighs a value vector
    by less than 1e-38 of its size, where the row's largest probability is at least 1/C: what
    it adds to an output, and what its gradient entry adds to the energies' gradient, is below
    float rounding. The matrix products that read the probabilities or that gradient then meet
    no subnormal operands, which x86 CPUs multiply many times slower than normal ones. Only the
    small C x C matrix is touched.
    """
    if energy.requires_grad:
        energy.register_hook(_flush_grad)
    return _flush(energy.softmax(dim))


# -- spatial IAU: part pooling as one product ---------------------------------------------------
def part_pool(x: Tensor, parts: Tensor) -> Tensor:
    """(N, C, P + 1): for x (N, C, M) and part maps (N, P, M), the P part sums ``x a_p^T`` and
    the global average, as one product ``x [a; 1/M]^T``. Its backward writes x's gradient
    once, in x's layout, where the part sums' and the mean's backward are two full-size adds,
    one of them transposed."""
    n, _, m = x.shape
    pool = torch.cat([parts, x.new_full((n, 1, m), 1 / m)], dim=1)
    return torch.bmm(x, pool.transpose(1, 2))


# -- RGA: the relation conv applied to the embeddings -----------------------------------------
def regrouped_relations(weight: Tensor, a: Tensor, b: Tensor, a_grid: Tensor,
                        b_grid: Tensor) -> Tensor:
    """RGA's 1x1 relation conv (weight (out, 2P), no bias) on every node's relation vector
    ``[a_i . b_grid_k for all k, a_grid_k . b_i for all k]``, (N, out, nodes), without forming
    the vectors: the weight W = [W_in, W_out] maps node i's vector to
    ``W_in b_grid^T a_i + W_out a_grid^T b_i``, fewer multiplications and no (2P x nodes) map in
    memory. ``a``, ``b`` (N, d, nodes); ``a_grid``, ``b_grid`` (N, d, P)."""
    p = a_grid.shape[2]
    w_in = weight[:, :p].to(a.dtype)
    w_out = weight[:, p:].to(a.dtype)
    m_in = torch.matmul(w_in, b_grid.transpose(1, 2))
    m_out = torch.matmul(w_out, a_grid.transpose(1, 2))
    return torch.matmul(m_in, a) + torch.matmul(m_out, b)

