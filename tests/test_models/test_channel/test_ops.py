"""mmattn.models.ops: the fused channel gate and the exportable adaptive pooling."""
import io

import pytest
import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from mmattn.models import ops
from mmattn.models.channel import CSE, ECA, SE, GatherExcite
from mmattn.models.ops import adaptive_avg_pool2d, channel_gate, global_avg_pool
from tests.helpers import assert_close, has_module, randomize_
from .reference import adaptive_bins_mean

CL = torch.channels_last
SHAPES = [(2, 3, 5, 4), (1, 1, 1, 1), (3, 7, 1, 5), (2, 6, 4, 5)]


def _pair(shape, dtype=torch.float64, channels_last=False, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=dtype)
    g = torch.rand(shape[:2] + (1, 1), generator=gen, dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=CL)
    return x.requires_grad_(), g.requires_grad_()


@pytest.fixture(params=[None, 7], ids=['one-block', 'many-blocks'])
def block(request, monkeypatch):
    """Run with the default block size and with tiny blocks, so the blocked loop is walked."""
    if request.param is not None:
        monkeypatch.setattr(ops, 'CPU_BLOCK', request.param)
    return request.param


@pytest.mark.parametrize('channels_last', [False, True], ids=['nchw', 'nhwc'])
@pytest.mark.parametrize('shape', SHAPES, ids=str)
def test_gradcheck(shape, channels_last, block):
    x, g = _pair(shape, channels_last=channels_last)
    assert torch.autograd.gradcheck(channel_gate, (x, g))
    if shape == SHAPES[0]:  # create_graph=True takes differentiable formulas
        assert torch.autograd.gradgradcheck(channel_gate, (x, g))


@pytest.mark.parametrize('gy_kind', ['nchw', 'nhwc', 'expanded'])
@pytest.mark.parametrize('channels_last', [False, True], ids=['x-nchw', 'x-nhwc'])
def test_same_gradients_as_plain_product(channels_last, gy_kind, block):
    shape = (3, 24, 13, 10)
    x, g = _pair(shape, dtype=torch.float32, channels_last=channels_last)
    gy = torch.randn(shape)
    if gy_kind == 'nhwc':
        gy = gy.contiguous(memory_format=CL)
    elif gy_kind == 'expanded':  # what .sum().backward() sends
        gy = torch.ones(()).expand(shape)
    y = channel_gate(x, g)
    assert type(y.grad_fn).__name__ == '_ChannelGateBackward'
    got = torch.autograd.grad(y, (x, g), gy)
    expected = torch.autograd.grad(x * g, (x, g), gy)
    assert_close(y, x * g, rtol=0, atol=0)
    assert_close(got[0], expected[0], rtol=0, atol=0)  # grad_x is the same product
    assert_close(got[1], expected[1], rtol=1e-5, atol=1e-5)  # a sum in another order
    if channels_last and gy_kind == 'nhwc':
        assert got[0].is_contiguous(memory_format=CL)


def test_only_one_input_needs_grad():
    x, g = _pair((2, 4, 3, 3))
    gy = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    (gx, ) = torch.autograd.grad(channel_gate(x, g.detach()), (x, ), gy)
    assert_close(gx, gy * g.detach())
    (gg, ) = torch.autograd.grad(channel_gate(x.detach(), g), (g, ), gy)
    assert_close(gg, (gy * x.detach()).sum((2, 3), keepdim=True))


def _allocations_like(x, fn):
    """The ops that allocate (nearly) x's size while fn runs."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    full = x.numel() * x.element_size()
    return [e.name for e in prof.events() if e.self_cpu_memory_usage >= 0.9 * full]


def _big_allocations(fn, channels_last):
    x, g = _pair((4, 64, 64, 64), dtype=torch.float32, channels_last=channels_last)
    gy = torch.randn_like(x)
    y = fn(x, g)
    return _allocations_like(x, lambda: y.backward(gy))


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks well below the test tensors' size (a tensor within one block is its own block)."""
    monkeypatch.setattr(ops, 'CPU_BLOCK', 1 << 16)


@pytest.mark.parametrize('channels_last', [False, True], ids=['nchw', 'nhwc'])
def test_backward_allocates_only_grad_x(channels_last, small_blocks):
    # autograd's own backward of x * g allocates gy * g and the temporary gy * x
    assert len(_big_allocations(lambda x, g: x * g, channels_last)) == 2
    assert len(_big_allocations(channel_gate, channels_last)) == 1


def test_se_backward_allocates_only_grad_x(small_blocks):
    m = SE(64)
    x = torch.randn(4, 64, 64, 64, requires_grad=True)
    gy = torch.randn_like(x)

    def plain(t):  # AdaptiveAvgPool2d(1) and autograd's product
        return t * m.gate(m.fc2(m.act(m.fc1(F.adaptive_avg_pool2d(t, 1)))))

    def big_allocations(fn):
        x.grad = None
        y = fn(x)
        return _allocations_like(x, lambda: y.backward(gy))

    # gy * g, gy * x and the pooling's divided gradient; the fused ops only write grad_x
    assert len(big_allocations(plain)) == 3
    assert len(big_allocations(m)) == 1
    expected = x.grad.clone()
    x.grad = None
    plain(x).backward(gy)
    assert_close(expected, x.grad, rtol=0, atol=0)


@pytest.mark.parametrize('channels_last', [False, True], ids=['nchw', 'nhwc'])
def test_global_avg_pool(channels_last):
    x, _ = _pair((2, 3, 5, 4), channels_last=channels_last)
    assert_close(global_avg_pool(x), x.mean((2, 3), keepdim=True))
    assert torch.autograd.gradcheck(global_avg_pool, (x, ))
    assert torch.autograd.gradgradcheck(global_avg_pool, (x, ))
    gy = torch.randn(2, 3, 1, 1, dtype=torch.float64)
    (gx, ) = torch.autograd.grad(global_avg_pool(x), (x, ), gy)
    assert gx.stride()[2:] == (0, 0)  # a broadcast view, nothing written
    assert_close(gx, gy.expand(2, 3, 5, 4) / 20)
    with torch.no_grad():
        assert global_avg_pool(x).grad_fn is None


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16], ids=str)
def test_low_precision_inputs(dtype):
    x, g = _pair((2, 32, 40, 40), dtype=torch.float64)
    gy = torch.randn(x.shape, dtype=torch.float64)
    xl, gl = x.detach().to(dtype).requires_grad_(), g.detach().to(dtype).requires_grad_()
    gx, gg = torch.autograd.grad(channel_gate(xl, gl), (xl, gl), gy.to(dtype))
    assert gx.dtype == dtype and gg.dtype == dtype
    ref = (gy.to(dtype).double() * xl.double()).sum((2, 3), keepdim=True)
    # the 1600-term sums are accumulated in float32: only the final rounding is lost
    assert_close(gg.double(), ref, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16], ids=str)
def test_se_under_autocast_matches_plain_product(dtype, monkeypatch):
    m = randomize_(SE(64, reduction=4)).train()
    x = torch.randn(2, 64, 12, 10, requires_grad=True)

    def run():
        for p in list(m.parameters()) + [x]:
            p.grad = None
        with torch.autocast('cpu', dtype=dtype):
            out = m(x)
        out.float().square().sum().backward()
        return out.detach(), x.grad.clone(), [p.grad.clone() for p in m.parameters()]

    fused = run()
    monkeypatch.setattr('mmattn.models.channel.se.channel_gate', lambda a, b: a * b)
    plain = run()
    assert fused[0].dtype == plain[0].dtype
    assert_close(fused[0], plain[0], rtol=0, atol=0)
    assert_close(fused[1], plain[1], rtol=1e-2, atol=1e-3)
    for a, b in zip(fused[2], plain[2]):
        assert_close(a, b, rtol=2e-2, atol=1e-3)


def test_inference_uses_the_plain_product():
    x, g = _pair((2, 4, 3, 3))
    with torch.no_grad():
        assert channel_gate(x, g).grad_fn is None
    y = channel_gate(x.detach(), g.detach())
    assert y.grad_fn is None and torch.equal(y, x.detach() * g.detach())
    # a gate that is not (N, C, 1, 1) is an ordinary broadcast product
    s = torch.rand(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    assert type(channel_gate(x, s).grad_fn).__name__ == 'MulBackward0'


@pytest.mark.parametrize('cls,kwargs', [(SE, {}), (ECA, {}), (GatherExcite, {}), (CSE, {})],
                         ids=['SE', 'ECA', 'GE-theta-minus', 'CSE'])
def test_light_gates_use_the_fused_product(cls, kwargs):
    m = cls(32, **kwargs)
    x = torch.randn(2, 32, 6, 5, requires_grad=True)
    assert type(m(x).grad_fn).__name__ == '_ChannelGateBackward'


def test_tracing_records_a_plain_mul():
    m = randomize_(SE(16)).train()
    x = torch.randn(2, 16, 5, 5, requires_grad=True)
    traced = torch.jit.trace(m, (x, ), check_trace=False)
    kinds = {n.kind() for n in traced.graph.nodes()}
    assert 'aten::mul' in kinds and 'prim::PythonOp' not in kinds


@pytest.mark.skipif(not (has_module('onnx') and has_module('onnxruntime')),
                    reason='needs onnx and onnxruntime')
def test_onnx_export_is_a_plain_mul():
    import onnx
    m = randomize_(SE(16)).eval()
    x = torch.randn(2, 16, 5, 5)
    buf = io.BytesIO()
    torch.onnx.export(m, (x, ), buf, opset_version=17, dynamo=False)
    graph = onnx.load_from_string(buf.getvalue()).graph
    ops_seen = [n.op_type for n in graph.node]
    assert ops_seen[-1] == 'Mul'
    assert all(n.domain in ('', 'ai.onnx') for n in graph.node)


@pytest.mark.parametrize('hw,out', [((12, 10), (7, 7)), ((5, 3), (4, 4)), ((1, 1), (2, 2)),
                                    ((9, 9), (3, 3)), ((13, 6), (1, 4))])
def test_adaptive_avg_pool2d(hw, out, monkeypatch):
    x = torch.randn(2, 3, *hw, dtype=torch.float64)
    expected = adaptive_bins_mean(x, *out)
    assert_close(adaptive_avg_pool2d(x, out), expected)
    # other traces (FLOP counters, TorchScript) keep PyTorch's op: they see what the model runs
    traced = torch.jit.trace(lambda t: adaptive_avg_pool2d(t, out), (x, ), check_trace=False)
    assert 'aten::adaptive_avg_pool2d' in {n.kind() for n in traced.graph.nodes()}
    assert_close(traced(x), expected)
    # the ONNX export's form (averaging matrices where the sizes do not divide): same bins
    monkeypatch.setattr(torch.onnx, 'is_in_onnx_export', lambda: True)
    exported = torch.jit.trace(lambda t: adaptive_avg_pool2d(t, out), (x, ), check_trace=False)
    assert_close(exported(x), expected)
    if hw[0] % out[0] or hw[1] % out[1]:
        kinds = {n.kind() for n in exported.graph.nodes()}
        assert 'aten::adaptive_avg_pool2d' not in kinds
    monkeypatch.undo()
    assert_close(adaptive_avg_pool2d(x, out[0]), adaptive_bins_mean(x, out[0], out[0]))
    assert_close(F.adaptive_avg_pool2d(x, out), expected)


# -- gram (DANet's CAM, channel IAU, GSoP) -----------------------------------------------------
@pytest.mark.parametrize('layout', ['contiguous', 'transposed'])
def test_gram_gradients_are_those_of_the_plain_product(layout):
    f = torch.randn(2, 5, 7, dtype=torch.float64)
    if layout == 'transposed':  # e.g. a channels-last map flattened
        f = f.transpose(1, 2).contiguous().transpose(1, 2)
    gy = torch.randn(2, 5, 5, dtype=torch.float64)
    f1, f2 = f.clone().requires_grad_(), f.clone().requires_grad_()
    g = ops.gram(f1)
    assert type(g.grad_fn).__name__.startswith('_Gram')
    g.backward(gy)
    torch.bmm(f2, f2.transpose(1, 2)).backward(gy)
    assert_close(g, torch.bmm(f, f.transpose(1, 2)))
    assert_close(f1.grad, f2.grad)
    x = torch.randn(2, 4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ops.gram, (x, ))
    assert torch.autograd.gradgradcheck(ops.gram, (x, ))


def test_gram_is_a_plain_bmm_without_gradients_or_in_a_trace():
    x = torch.randn(2, 4, 6)
    assert ops.gram(x).grad_fn is None
    xg = x.clone().requires_grad_()
    graph = str(torch.jit.trace(ops.gram, (xg, )).graph)
    assert 'aten::bmm' in graph and '_Gram' not in graph
