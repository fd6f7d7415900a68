"""Every path of the lean softmax and concatenation attention against the explicit formula,
and :func:`attention_path`, which picks a path by device, dtype and size.

The CPU tests run each path (``path=``) and compare values and gradients with the explicit
formula in float64, where any path's error is ~1e-15: a wrong padding, head split, scale or
block boundary shows as an O(1) difference. :func:`attention_path` is a plain function of
(device type, dtype, sizes), so its choices for a GPU are tested here too. The CUDA tests
(skipped without a GPU) compare what each path computes there with a float64 CPU reference.
"""
import copy
import warnings

import pytest
import torch
from torch.nn.attention import SDPBackend

from mmattn.models.context import DANetPAM, NonLocal
from mmattn.models.layers import attention as ops
from mmattn.models.layers import attention_path
from tests.helpers import randomize_

SOFTMAX_PATHS = ('explicit', 'sdpa', 'sdpa_heads', 'blocked')
f32, f16, bf16, f64 = torch.float32, torch.float16, torch.bfloat16, torch.float64
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason='needs a CUDA GPU (compares its paths with a float64 '
                                       'CPU reference)')


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 3 queries of one sample, so that blocks split samples unevenly."""
    monkeypatch.setattr(ops, 'BLOCK_ELEMENTS', 3 * 11)
    monkeypatch.setattr(ops, 'MIN_ROWS', 1)


def _inputs(batch, n_q, n_k, d, e, dtype=f64, device='cpu', seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(batch, n, d, generator=gen, dtype=f64) for n in (n_q, n_k))
    v = torch.randn(batch, n_k, e, generator=gen, dtype=f64)
    return [t.to(device, dtype).requires_grad_() for t in (q, k, v)]


def _value_and_grads(fn, tensors, weight):
    out = fn(*tensors)
    grads = torch.autograd.grad((out.to(weight.dtype) * weight).sum(), tensors)
    return out, grads


def _assert_close(got, expected, rtol, what, floor=0.0):
    """max |got - expected| <= rtol * max(max |expected|, floor): a relative error over the
    tensor; ``floor`` for tensors that are mathematically zero (a key bias's gradient under a
    softmax, whose rows of dS sum to 0), which are compared with the largest of their set."""
    got, expected = got.double(), expected.double().to(got.device)
    err = (got - expected).abs().max().item()
    scale = max(expected.abs().max().item(), floor)
    assert err <= rtol * scale, f'{what}: max abs error {err:.3g}, {err / scale:.3g} of ' \
                                f'the largest entry {scale:.3g} (allowed {rtol:g})'


# (batch, queries, keys, query/key width, value width): PAM-like (d < e, values split into
# three heads, the last padded), Non-local-like (equal), d > e, widths not multiples of 8
SHAPES = [(2, 13, 11, 5, 300), (3, 7, 10, 6, 6), (1, 9, 8, 20, 3), (2, 5, 12, 3, 17)]


@pytest.mark.parametrize('values_first', [False, True], ids=['pv', 'values-first'])
@pytest.mark.parametrize('scale', [1.0, 0.37])
@pytest.mark.parametrize('shape', SHAPES, ids=lambda s: 'x'.join(map(str, s)))
@pytest.mark.parametrize('path', SOFTMAX_PATHS)
def test_every_softmax_path_equals_explicit(path, shape, scale, values_first, small_blocks):
    """Every path, and PAM's order of the explicit product ((v^T p^T)^T, ``values_first``),
    against ``softmax(q k^T * scale) v`` written out."""
    tensors = _inputs(*shape)
    weight = torch.randn(shape[0], shape[1], shape[4], dtype=f64)
    ref, ref_grads = _value_and_grads(
        lambda q, k, v: ops.explicit_softmax_attention(q, k, v, scale), tensors, weight)
    out, grads = _value_and_grads(
        lambda q, k, v: ops.softmax_attention(q, k, v, scale, values_first=values_first,
                                              path=path), tensors, weight)
    # inference (no autograd) takes each path's forward-only branch
    with torch.no_grad():
        out_ng = ops.softmax_attention(*tensors, scale, values_first=values_first, path=path)
    for what, got, expected in [('output', out, ref), ('no-grad output', out_ng, ref)] + [
            (f'gradient of {n}', g, r) for n, g, r in zip('qkv', grads, ref_grads)]:
        _assert_close(got, expected, 1e-12, f'{path} {what}')


def test_values_first_lays_the_result_out_channels_first():
    """PAM's order leaves the result (B, e, L) in memory, so that the channels-first reshape
    after it is a view; the default order leaves it (B, L, e)."""
    tensors = _inputs(2, 13, 11, 5, 7)
    assert ops.explicit_softmax_attention(*tensors, 0.5, values_first=True).transpose(
        1, 2).is_contiguous()
    assert ops.explicit_softmax_attention(*tensors, 0.5).is_contiguous()


@pytest.mark.parametrize('path', SOFTMAX_PATHS)
def test_softmax_paths_under_cpu_autocast(path, small_blocks):
    """bfloat16 autocast: each path as close to the float64 result as the explicit formula
    under the same autocast (bfloat16 products, float32 softmax statistics)."""
    shape = (2, 13, 11, 8, 40)
    q, k, v = _inputs(*shape, dtype=f32)
    ref = ops.explicit_softmax_attention(q.double(), k.double(), v.double(), 0.5)
    with torch.autocast('cpu', dtype=bf16):
        explicit = ops.explicit_softmax_attention(q, k, v, 0.5)
        out = ops.softmax_attention(q, k, v, 0.5, path=path)
    assert out.dtype == explicit.dtype == bf16
    bound = 2 * (explicit.double() - ref).abs().max().item()
    assert (out.double() - ref).abs().max().item() <= max(bound, 1e-2)


@pytest.mark.parametrize('path', ('explicit', 'blocked'))
def test_every_concat_path_equals_explicit(path, small_blocks):
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(2, 13, 1, generator=gen, dtype=f64, requires_grad=True)
    b = torch.randn(2, 11, 1, generator=gen, dtype=f64, requires_grad=True)
    g = torch.randn(2, 11, 7, generator=gen, dtype=f64, requires_grad=True)
    weight = torch.randn(2, 13, 7, dtype=f64)
    ref, ref_grads = _value_and_grads(ops.explicit_concat_attention, (a, b, g), weight)
    out, grads = _value_and_grads(
        lambda a, b, g: ops.concat_attention(a, b, g, path=path), (a, b, g), weight)
    for what, got, expected in [('output', out, ref)] + [
            (f'gradient of {n}', x, r) for n, x, r in zip('abg', grads, ref_grads)]:
        _assert_close(got, expected, 1e-12, f'{path} {what}')


def test_empty_maps_take_no_fused_kernel():
    """No queries or no keys: every path returns the explicit formula's result (empty, or
    zeros: sums over no keys) without calling a kernel that rejects empty sequences."""
    for n_q, n_k in [(0, 5), (4, 0)]:
        q, k, v = _inputs(2, n_q, n_k, 4, 6)
        ref = ops.explicit_softmax_attention(q, k, v, 1.0)
        for path in SOFTMAX_PATHS:
            out = ops.softmax_attention(q, k, v, 1.0, path=path)
            assert out.shape == ref.shape == (2, n_q, 6)
            assert torch.equal(out, ref)  # no keys: sums over nothing, zeros


@pytest.mark.parametrize('grad', [True, False])
def test_empty_batch_on_every_path(grad):
    """No samples: every path returns an empty result (the blocks of an empty batch were
    range(0, 0, 0), a ValueError: DANet's PAM and Non-local on the CPU)."""
    q, k, v = (t.detach().requires_grad_(grad) for t in _inputs(0, 5, 7, 4, 6))
    a, b = torch.randn(0, 5, 1, dtype=f64), torch.randn(0, 7, 1, dtype=f64)
    for path in SOFTMAX_PATHS:
        assert ops.softmax_attention(q, k, v, 1.0, path=path).shape == (0, 5, 6)
    for path in ('explicit', 'blocked'):
        assert ops.concat_attention(a, b, v, path=path).shape == (0, 5, 6)


@pytest.fixture
def forced_path(monkeypatch):
    """``forced_path(path)``: the modules' attention runs ``path`` wherever attention_path
    would choose."""
    return lambda path: monkeypatch.setattr(ops, 'attention_path', lambda *a, **k: path)


@pytest.mark.parametrize('module', ['pam', 'nonlocal'])
@pytest.mark.parametrize('path', SOFTMAX_PATHS)
def test_modules_through_every_path(module, path, small_blocks, forced_path):
    """DANet's PAM (C/8 against C wide) and Non-local (equal widths, scaled), float64, batch 2,
    odd map: every path gives lean=False's outputs and gradients."""
    torch.manual_seed(0)
    m = DANetPAM(16) if module == 'pam' else NonLocal(16, norm_cfg=None)
    m = randomize_(m.double(), scale=0.5).train()
    explicit = copy.deepcopy(m)
    explicit.lean = False
    x = torch.randn(2, 16, 5, 7, dtype=f64)
    weight = torch.randn(x.shape, dtype=f64)

    def run(mod):
        xi = x.clone().requires_grad_()
        out = mod(xi)
        params = [p for p in mod.parameters()]
        grads = torch.autograd.grad((out * weight).sum(), [xi] + params)
        return [out] + list(grads)

    ref = run(explicit)
    forced_path(path)
    got = run(m)
    largest = max(r.abs().max().item() for r in ref)
    for i, (g, r) in enumerate(zip(got, ref)):
        _assert_close(g, r, 1e-12, f'{module} {path} tensor {i}', floor=largest)


def test_sdpa_heads_split_and_padding():
    """The head layout itself: PAM's widths (64 against 512) give four heads of 128 with q and
    k zero-padded; values of 300 give three heads, the last padded; a query width over the
    value width gives one head as wide as the (8-aligned) queries."""
    assert ops._head_width(64, 512) == 128
    assert ops._head_width(256, 256) == 256
    assert ops._head_width(5, 300) == 128 and -(-300 // 128) == 3
    assert ops._head_width(20, 3) == 24
    assert ops._head_width(130, 20) == 136
    q, k, v = (t.detach() for t in _inputs(2, 9, 7, 64, 512))
    ref = ops.explicit_softmax_attention(q, k, v, 1.0)
    _assert_close(ops._sdpa_heads(q, k, v, 1.0), ref, 1e-12, 'heads of 128')


def test_no_fused_kernel_falls_back_to_blocks(monkeypatch):
    """Where the SDPA paths may use the fused kernels only (a GPU) and none takes the shape,
    the call warns once and runs by blocks, with the same results. Simulated on the CPU,
    which has no memory-efficient kernel."""
    monkeypatch.setattr(ops, '_FUSED_ONLY', ('cpu', ))
    monkeypatch.setattr(ops, '_CUDA_SDPA_BACKENDS', [SDPBackend.EFFICIENT_ATTENTION])
    monkeypatch.setattr(ops, '_REJECTED', set())
    tensors = _inputs(2, 9, 7, 5, 12)
    weight = torch.randn(2, 9, 12, dtype=f64)
    ref, ref_grads = _value_and_grads(
        lambda q, k, v: ops.explicit_softmax_attention(q, k, v, 0.5), tensors, weight)
    for path in ('sdpa', 'sdpa_heads'):
        with pytest.warns(UserWarning, match='running by blocks'):
            out, grads = _value_and_grads(
                lambda q, k, v: ops.softmax_attention(q, k, v, 0.5, path=path), tensors,
                weight)
        for what, got, expected in [('output', out, ref)] + list(zip('qkv', grads, ref_grads)):
            _assert_close(got, expected, 1e-12, f'{path} fallback {what}')
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # said once per dtype and widths
        ops.softmax_attention(*tensors, 0.5, path='sdpa_heads')


# -- attention_path ---------------------------------------------------------------------------
@pytest.mark.parametrize('dtype', [f32, f64, bf16, f16])
def test_cpu_choices(dtype):
    """The CPU: the fused kernel for equal widths in inference, blocks otherwise (training,
    unequal widths, empty maps); a matrix no larger than the values explicitly."""
    assert attention_path('cpu', dtype, 2, 8192, 8192, 256, 256, False) == 'sdpa'
    assert attention_path('cpu', dtype, 2, 8192, 8192, 256, 256, True) == 'blocked'
    assert attention_path('cpu', dtype, 2, 8192, 8192, 64, 512, False) == 'blocked'
    assert attention_path('cpu', dtype, 1, 4096, 4096, 64, 512, True) == 'blocked'
    assert attention_path('cpu', dtype, 2, 0, 8192, 256, 256, False) == 'blocked'
    assert attention_path('cpu', dtype, 1, 16, 16, 1, 8, True, form='concat') == 'blocked'
    assert attention_path('cpu', dtype, 1, 16, 16, 1, 8, False, form='concat') == 'blocked'
    # keys <= value width: the matrix is no larger than the values, nothing to save
    assert attention_path('cpu', dtype, 1, 16, 16, 64, 512, True) == 'explicit'
    assert attention_path('cpu', dtype, 1, 16, 16, 1, 16, True, form='concat') == 'explicit'


# (batch, H, W) -> queries = keys = H * W
SMALL, TARGET_SMALL, TARGET_LARGE = (1, 32, 32), (2, 64, 128), (1, 128, 256)


def _sizes(case):
    batch, h, w = case
    return batch, h * w, h * w


@pytest.mark.parametrize('grad', [True, False])
def test_cuda_choices(grad):
    choose = attention_path
    for half in (bf16, f16):
        for case in (SMALL, TARGET_SMALL, TARGET_LARGE):
            # Non-local (equal widths <= 256): one head through flash / cuDNN
            assert choose('cuda', half, *_sizes(case), 256, 256, grad) == 'sdpa'
            # PAM (64 against 512): heads sharing q and k
            assert choose('cuda', half, *_sizes(case), 64, 512, grad) == 'sdpa_heads'
            assert choose('cuda', half, *_sizes(case), 5, 5, grad) == 'sdpa_heads'
        # queries wider than a kernel's head: the plain products
        assert choose('cuda', half, *_sizes(TARGET_SMALL), 512, 256, grad) == 'explicit'
        assert choose('cuda', half, *_sizes(TARGET_LARGE), 512, 256, grad) == 'blocked'
        assert choose('cuda', half, 2, 0, 64, 64, 64, grad) != 'sdpa'
        assert choose('cuda', half, 2, 0, 640, 64, 64, grad) != 'sdpa'
    for dtype in (f32, f64):
        for d, e in [(64, 512), (256, 256)]:
            # float32 never takes the fused kernels (their float32 kernel is slow)
            assert choose('cuda', dtype, *_sizes(SMALL), d, e, grad) == 'explicit'
            # DANet's training crop: its explicit matrices (1.6 GB in float32) are past the
            # bound, which keeps the step under 80% of mmseg's memory
            assert choose('cuda', dtype, *_sizes(TARGET_SMALL), d, e, grad) == 'blocked'
            assert choose('cuda', dtype, *_sizes(TARGET_LARGE), d, e, grad) == 'blocked'
        # Non-local in the module benchmark, (8, 256, 56, 56): 0.94 GB of float32 matrices
        assert choose('cuda', f32, 8, 3136, 3136, 128, 128, grad) == 'explicit'
        assert choose('cuda', f64, 8, 3136, 3136, 128, 128, grad) == 'blocked'
    # other accelerators: nothing measured, the plain products within the same bound
    assert choose('mps', f16, *_sizes(TARGET_SMALL), 64, 512, grad) == 'explicit'
    assert choose('xpu', bf16, *_sizes(TARGET_LARGE), 256, 256, grad) == 'blocked'
    concat = dict(form='concat')
    assert choose('cuda', f32, *_sizes(SMALL), 1, 256, grad, **concat) == 'explicit'
    # the bound is in bytes: float64 matrices past it at a size where float32 ones fit
    n = int((ops.EXPLICIT_BYTES // 16) ** 0.5)
    assert choose('cuda', f32, 1, n, n, 1, 256, grad, **concat) == 'explicit'
    assert choose('cuda', f64, 1, n, n, 1, 256, grad, **concat) == 'blocked'
    for half in (bf16, f16):  # no fused kernel for the concatenation form
        assert choose('cuda', half, *_sizes(SMALL), 1, 256, grad, **concat) == 'explicit'
    assert choose('cuda', f32, *_sizes(TARGET_SMALL), 1, 256, grad, **concat) == 'blocked'
    assert choose('cuda', f32, *_sizes(TARGET_LARGE), 1, 256, grad, **concat) == 'blocked'


@pytest.mark.parametrize('device', ['cpu', 'cuda', 'mps'])
@pytest.mark.parametrize('dtype', [f32, bf16, f16, f64])
def test_few_keys_are_explicit_everywhere(device, dtype):
    """ANN's 110 pyramid anchors and OCR's 19 regions against 256-wide values: the matrix is
    no larger than the values, so it is written out on every device, in training and not,
    unless its matrices are past the explicit bound (then the usual choice)."""
    for grad in (True, False):
        for n_k, batch, n_q in [(110, 8, 56 * 56), (19, 2, 128 * 256), (110, 2, 128 * 256),
                                (1, 1, 4096), (256, 1, 4096)]:
            assert attention_path(device, dtype, batch, n_q, n_k, 256, 256, grad) == 'explicit'
        huge = (64, 512 * 1024, 110, 256, 256, grad)  # 3 x 14.8 GB of float32 matrices
        usual = attention_path(device, dtype, 64, 512 * 1024, 1000, 256, 256, grad)
        assert attention_path(device, dtype, *huge) == usual != 'explicit'
        # more keys than value channels: the usual choice (on the CPU, a lean path)
        assert attention_path('cpu', dtype, 8, 56 * 56, 110, 64, 64, grad) == (
            'blocked' if grad else 'sdpa')


def test_attention_path_refuses_an_unknown_form():
    with pytest.raises(ValueError, match="form must be 'softmax' or 'concat'"):
        attention_path('cpu', f32, 1, 2, 3, 4, 2, False, form='anchor')


def test_unknown_paths_are_refused():
    q, k, v = _inputs(1, 3, 4, 2, 2)
    with pytest.raises(ValueError, match='softmax_attention: path must be one of'):
        ops.softmax_attention(q, k, v, 1.0, path='fast')
    with pytest.raises(ValueError, match="concat_attention: path must be 'explicit' or"):
        ops.concat_attention(q[..., :1], k[..., :1], v, path='sdpa')


def test_attention_path_sees_autocast_dtype_and_sizes(monkeypatch):
    """softmax_attention and concat_attention ask attention_path with the device type, the
    dtype they compute in (autocast's), the sizes and whether autograd needs a backward."""
    asked = []

    def recording(*args, **kwargs):
        asked.append((args, kwargs))
        return 'explicit'

    monkeypatch.setattr(ops, 'attention_path', recording)
    q, k, v = _inputs(2, 13, 11, 5, 7, dtype=f32)
    with torch.autocast('cpu', dtype=bf16):
        ops.softmax_attention(q, k, v, 0.5)
    with torch.no_grad():
        ops.softmax_attention(q, k, v, 0.5)
    ops.softmax_attention(q.double(), k.double(), v.double(), 0.5)
    ops.concat_attention(q[..., :1], k[..., :1].detach(), v.detach())
    assert asked == [
        (('cpu', bf16, 2, 13, 11, 5, 7, True), {}),
        (('cpu', f32, 2, 13, 11, 5, 7, False), {}),
        (('cpu', f64, 2, 13, 11, 5, 7, True), {}),
        (('cpu', f32, 2, 13, 11, 1, 7, True), {'form': 'concat'}),
    ]
    # lean=False, and graphs captured for export, never ask
    asked.clear()
    ops.softmax_attention(q, k, v, 0.5, lean=False)
    ops.concat_attention(q[..., :1], k[..., :1], v, lean=False)
    torch.jit.trace(lambda a, b, c: ops.softmax_attention(a, b, c, 0.5),
                    (q.detach(), k.detach(), v.detach()), check_trace=False)
    assert asked == []


def test_gpu_memory_bound():
    """The attention matrices the GPU paths hold (three at the backward's peak, float32) stay
    under 1/10 of the explicit step's 16.5 GB at 1x512x128x256 (lean_attention.md): the
    blocks with room to spare for the rest of a head's step, the explicit choice's matrices
    too."""
    bound = 16.5e9 / 10
    samples, rows = ops._blocking(1, 128 * 256, 128 * 256, 'cuda')
    assert samples == 1 and rows >= 1024  # products large enough for a GPU
    assert 3 * samples * rows * 128 * 256 * 4 <= bound / 4
    assert ops.EXPLICIT_BYTES <= bound
    # DANet's training crop, 2x512x64x128: blocks of 1024 queries of one sample (32 MiB)
    assert ops._blocking(2, 64 * 128, 64 * 128, 'cuda') == (1, 1024)
    # the CPU's blocks
    assert ops._blocking(1, 128 * 256, 128 * 256) == (1, ops.MIN_ROWS)


# (block elements, minimum rows) -> blocks of (samples, queries) over a batch of 2, 7 queries
# and 6 keys: 3 queries of one sample (a shorter last block), all 7 queries of both samples
BLOCKINGS = {'3-queries': (3 * 6, 1), 'both-samples': (2 * 7 * 6, 1)}


def test_blocking_sizes(monkeypatch):
    monkeypatch.setattr(ops, 'MIN_ROWS', 1)
    for name, expected in [('3-queries', (1, 3)), ('both-samples', (2, 7))]:
        monkeypatch.setattr(ops, 'BLOCK_ELEMENTS', BLOCKINGS[name][0])
        assert ops._blocking(2, 7, 6) == expected
        blocks = [(sb.start, sb.stop, sq.start, n) for sb, sq, _, n in
                  ops._blocks(2, 7, expected)]
        covered = sorted((b, q) for b0, b1, q0, n in blocks for b in range(b0, b1)
                         for q in range(q0, q0 + n))
        assert covered == [(b, q) for b in range(2) for q in range(7)]
    # the defaults: at least MIN_ROWS queries of one sample, however many keys
    monkeypatch.undo()
    samples, rows = ops._blocking(8, 128 * 256, 128 * 256)
    assert (samples, rows) == (1, ops.MIN_ROWS)
    samples, rows = ops._blocking(2, 64 * 128, 64 * 128)
    assert samples * rows * 64 * 128 <= max(ops.BLOCK_ELEMENTS, ops.MIN_ROWS * 64 * 128)
    assert rows >= ops.MIN_ROWS


@pytest.mark.parametrize('blocking', list(BLOCKINGS))
@pytest.mark.parametrize('widths', [(3, 3), (2, 5), (5, 2)])
def test_blocked_softmax_attention_gradcheck(widths, blocking, monkeypatch):
    """The blocked attention's hand-written backward against finite differences (float64),
    over a batch of 2, by blocks of one sample's queries (a shorter last block) or of both
    samples."""
    monkeypatch.setattr(ops, 'BLOCK_ELEMENTS', BLOCKINGS[blocking][0])
    monkeypatch.setattr(ops, 'MIN_ROWS', BLOCKINGS[blocking][1])
    d, e = widths
    q = torch.randn(2, 7, d, dtype=f64, requires_grad=True)
    k = torch.randn(2, 6, d, dtype=f64, requires_grad=True)
    v = torch.randn(2, 6, e, dtype=f64, requires_grad=True)
    fn = lambda q, k, v: ops.softmax_attention(q, k, v, 0.7, path='blocked')  # noqa: E731
    assert torch.autograd.gradcheck(fn, (q, k, v))
    expected = ops.explicit_softmax_attention(q, k, v, 0.7)
    _assert_close(fn(q, k, v), expected, 1e-12, 'blocked output')


@pytest.mark.parametrize('blocking', list(BLOCKINGS))
def test_blocked_concat_attention_gradcheck(blocking, monkeypatch):
    monkeypatch.setattr(ops, 'BLOCK_ELEMENTS', BLOCKINGS[blocking][0])
    monkeypatch.setattr(ops, 'MIN_ROWS', BLOCKINGS[blocking][1])
    # ReLU's kink: keep every a_i + b_j away from 0 so that finite differences are valid
    signs = torch.tensor([1., -1., 1., -1., 1., -1., 1.], dtype=f64)
    a = ((torch.rand(2, 7, dtype=f64) + 0.1) * signs)[..., None].requires_grad_()
    b = (torch.rand(2, 6, 1, dtype=f64) * 0.05).requires_grad_()
    g = torch.randn(2, 6, 3, dtype=f64, requires_grad=True)
    fn = lambda a, b, g: ops.concat_attention(a, b, g, path='blocked')  # noqa: E731
    assert torch.autograd.gradcheck(fn, (a, b, g))
    _assert_close(fn(a, b, g), ops.explicit_concat_attention(a, b, g), 1e-12, 'blocked output')


# -- on a CUDA GPU ----------------------------------------------------------------------------
def _cuda_run(path, dtype, autocast, tensors, scale, weight):
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False  # plain float32 products, as the reference
    try:
        with torch.autocast('cuda', dtype=dtype, enabled=autocast):
            return _value_and_grads(
                lambda q, k, v: ops.softmax_attention(q, k, v, scale, path=path), tensors,
                weight.to(device='cuda', dtype=f32))
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32


def _cuda_case(path, dtype, autocast, shape, rtol):
    """``path`` on the GPU against the explicit formula in float64 on the CPU: within ``rtol``
    of each tensor's largest entry, or (half precision) within twice the explicit formula's
    own error under the same autocast on the GPU."""
    scale = shape[3]**-0.5  # energies of order 1, as a trained module's
    tensors = _inputs(*shape, dtype=f32, device='cuda')
    ref_in = [t.detach().double().cpu().requires_grad_() for t in tensors]
    weight = torch.randn(shape[0], shape[1], shape[4], dtype=f64)
    ref = _value_and_grads(
        lambda q, k, v: ops.explicit_softmax_attention(q, k, v, scale), ref_in, weight)
    got = _cuda_run(path, dtype, autocast, tensors, scale, weight)
    explicit = _cuda_run('explicit', dtype, autocast, tensors, scale, weight)
    flat = lambda r: [r[0]] + list(r[1])  # noqa: E731
    for what, g, e, r in zip(['output', 'gradient of q', 'gradient of k', 'gradient of v'],
                             flat(got), flat(explicit), flat(ref)):
        r = r.double().cuda()
        own = (e.double() - r).abs().max().item() / r.abs().max().item()
        _assert_close(g, r, max(rtol, 2 * own) if autocast else rtol,
                      f'cuda {path} {dtype} {what}')


@needs_cuda
@pytest.mark.parametrize('shape', [(2, 1000, 900, 64, 512), (1, 333, 400, 256, 256)])
@pytest.mark.parametrize('path', ('explicit', 'blocked'))
def test_cuda_float32_paths_match_float64(path, shape):
    """float32 on the GPU: the plain products (no TF32), within float32 rounding of
    float64."""
    _cuda_case(path, f32, False, shape, 1e-5)


@needs_cuda
@pytest.mark.parametrize('dtype', [bf16, f16])
@pytest.mark.parametrize('shape', [(2, 1000, 900, 64, 512), (1, 333, 400, 256, 256),
                                   (2, 300, 200, 20, 100)])
@pytest.mark.parametrize('path', SOFTMAX_PATHS)
def test_cuda_autocast_paths_match_float64(path, shape, dtype):
    """Half precision: every path as close to float64 as the explicit formula under the same
    autocast (or within 1e-2)."""
    _cuda_case(path, dtype, True, shape, 1e-2)


@needs_cuda
@pytest.mark.parametrize('dtype', [bf16, f16])
def test_cuda_rule_runs_a_fused_kernel(dtype, recwarn):
    """PAM's and Non-local's widths in half precision find a fused kernel (no fallback to
    blocks, which warns)."""
    for d, e in [(64, 512), (256, 256)]:
        q, k, v = _inputs(1, 4096, 4096, d, e, dtype=dtype, device='cuda')
        assert attention_path('cuda', dtype, 1, 4096, 4096, d, e, True) in ('sdpa',
                                                                            'sdpa_heads')
        ops.softmax_attention(q, k, v, 1.0).float().sum().backward()
    assert not [w for w in recwarn if 'running by blocks' in str(w.message)]


@needs_cuda
@pytest.mark.parametrize('autocast', [False, True])
@pytest.mark.parametrize('module', ['pam', 'nonlocal'])
def test_cuda_training_step_memory(module, autocast):
    """A training step at 1x512x128x256 holds at most 1/10 of the explicit path's 16.5 GB
    (lean_attention.md)."""
    m = (DANetPAM(512) if module == 'pam' else NonLocal(512)).cuda().train()
    x = torch.randn(1, 512, 128, 256, device='cuda', requires_grad=True)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    with torch.autocast('cuda', dtype=bf16, enabled=autocast):
        out = m(x)
    out.float().sum().backward()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - before
    assert peak <= 1.65e9, f'{module}: peak {peak / 2**20:.0f} MiB'


# -- attention to a few keys (ANN's anchors, OCR's regions) ---------------------------------
@pytest.mark.parametrize('name', ['APNBlock', 'AFNBlock', 'ObjectContext'])
def test_anchor_modules_through_every_path(name, forced_path):
    """ANN's blocks and OCR in float64: every path gives the explicit formula's outputs and
    gradients (they run it: their few keys are no more than the value width)."""
    from mmattn.models import build_attention
    kwargs = dict(key_channels=8, value_channels=12) if name != 'ObjectContext' else \
        dict(mid_channels=12, key_channels=8)
    m = randomize_(build_attention(name, 16, **kwargs).double(), scale=0.5)
    m.train()
    for mod in m.modules():  # batch statistics would hide the attention's arithmetic
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            mod.eval()
        if isinstance(mod, torch.nn.Dropout2d):
            mod.p = 0.0
    gen = torch.Generator().manual_seed(2)
    inputs = [t.double() for t in m.example_inputs(16, (2, 16, 9, 10), generator=gen)] \
        if name != 'APNBlock' else [torch.randn(2, 16, 9, 10, generator=gen, dtype=f64)]

    def run():
        xs = [x.clone().requires_grad_() for x in inputs]
        out = m(*xs)
        grads = torch.autograd.grad(out.square().sum(), xs + list(m.parameters()),
                                    allow_unused=True)
        return [out] + [g for g in grads if g is not None]

    ref = run()
    largest = max(r.abs().max().item() for r in ref)
    for path in SOFTMAX_PATHS:
        forced_path(path)
        got = run()
        assert len(got) == len(ref)
        for i, (g, r) in enumerate(zip(got, ref)):
            _assert_close(g, r, 1e-12, f'{name} {path} tensor {i}', floor=largest)
