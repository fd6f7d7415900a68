import importlib.util

import pytest
import torch

from mmattn.models.context import CrissCross
from mmattn.models.layers import fast_paths
from tests.helpers import assert_close, randomize_, requires_mmdet
from .context_helpers import build_config_backbone, check_backbone_runs, plugins_by_block


def criss_cross_reference(m, x):
    """One criss-cross pass written out pixel by pixel."""
    n, c, h, w = x.shape

    def proj(conv):
        return torch.einsum('oc,nchw->nohw', conv.weight.flatten(1), x) + conv.bias[:, None, None]

    q, k, v = proj(m.query_conv), proj(m.key_conv), proj(m.value_conv)
    out = torch.empty_like(x)
    for b in range(n):
        for i in range(h):
            for j in range(w):
                # the column without the pixel itself, then the whole row (the pixel once)
                keys = [(r, j) for r in range(h) if r != i] + [(i, s) for s in range(w)]
                energy = torch.stack([q[b, :, i, j] @ k[b, :, r, s] for r, s in keys])
                attn = torch.exp(energy - energy.max())
                attn = attn / attn.sum()  # one softmax over the H - 1 + W energies
                ctx = sum(a * v[b, :, r, s] for a, (r, s) in zip(attn, keys))
                out[b, :, i, j] = m.gamma * ctx + x[b, :, i, j]
    return out


@pytest.mark.parametrize('fast', [True, False])
@pytest.mark.parametrize('hw', [(5, 7), (1, 4), (4, 1), (1, 1)])
def test_criss_cross_matches_formula(hw, fast):
    m = randomize_(CrissCross(16, recurrence=1), scale=0.3).double().eval()
    x = torch.randn(2, 16, *hw, dtype=torch.float64)
    with torch.no_grad(), fast_paths(fast):
        assert_close(m(x), criss_cross_reference(m, x))


def test_criss_cross_recurrence_shares_weights():
    m = randomize_(CrissCross(16, recurrence=3), scale=0.3).double().eval()
    x = torch.randn(1, 16, 4, 6, dtype=torch.float64)
    with torch.no_grad():
        expected = x
        for _ in range(3):
            expected = criss_cross_reference(m, expected)
        assert_close(m(x), expected)
    # the same parameters whatever R is
    assert ({n: p.shape for n, p in CrissCross(16, recurrence=1).named_parameters()} == {
        n: p.shape for n, p in m.named_parameters()})


def test_criss_cross_initial_state():
    m = CrissCross(512)
    assert m.recurrence == 2  # the authors' reported runs (--recurrence 2), mmseg's CCHead
    assert m.query_conv.weight.shape == (64, 512, 1, 1) and m.query_conv.bias is not None
    assert m.key_conv.weight.shape == (64, 512, 1, 1) and m.key_conv.bias is not None
    assert m.value_conv.weight.shape == (512, 512, 1, 1) and m.value_conv.bias is not None
    assert isinstance(m.gamma, torch.nn.Parameter) and m.gamma.item() == 0
    assert set(m.state_dict()) == {
        'query_conv.weight', 'query_conv.bias', 'key_conv.weight', 'key_conv.bias',
        'value_conv.weight', 'value_conv.bias', 'gamma'
    }
    x = torch.randn(2, 512, 3, 5)
    assert torch.equal(m(x), x)
    assert CrissCross(4).key_channels == 1
    with pytest.raises(ValueError):
        CrissCross(16, recurrence=0)


def test_criss_cross_gradients_and_gamma():
    m = randomize_(CrissCross(16), scale=0.3).double()
    with torch.no_grad():
        m.gamma.zero_()
    x = torch.randn(2, 16, 5, 4, dtype=torch.float64, requires_grad=True)
    (m(x) * torch.randn_like(x)).sum().backward()
    assert m.gamma.grad.abs().item() > 0
    # gradients of the module against finite differences, in float64
    m = randomize_(CrissCross(8, recurrence=2), scale=0.3).double()
    x = torch.randn(1, 8, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(m, (x, ))


def _fused_pass_ran(y):
    return type(y.grad_fn).__name__.startswith('_CrissCross')


@pytest.mark.parametrize('recurrence', [1, 2])
@pytest.mark.parametrize('shape', [(2, 16, 5, 7), (1, 16, 1, 4), (2, 16, 4, 1), (1, 16, 1, 1),
                                   (3, 24, 6, 6)])
def test_fused_pass_matches_autograd_of_the_formula(shape, recurrence):
    """The fused pass (hand-written backward) against autograd through the plain pass (the
    switch off), in float64: the output and the gradients of x, of every conv weight and
    bias, and of gamma."""
    fused = randomize_(CrissCross(shape[1], recurrence=recurrence), scale=0.3).double()
    plain = CrissCross(shape[1], recurrence=recurrence).double()
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(shape, dtype=torch.float64)
    gy = torch.randn(shape, dtype=torch.float64)
    results = []
    for m in (fused, plain):
        xi = x.clone().requires_grad_()
        with fast_paths(m is fused):
            y = m(xi)
        assert _fused_pass_ran(y) == (m is fused)
        y.backward(gy)
        results.append((y.detach(), xi.grad, {n: p.grad for n, p in m.named_parameters()}))
    (y, gx, grads), (y_ref, gx_ref, grads_ref) = results
    assert_close(y, y_ref)
    assert_close(gx, gx_ref)
    assert grads.keys() == grads_ref.keys() and len(grads) == 7
    for name in grads:
        assert_close(grads[name], grads_ref[name], msg=f'gradient of {name}')
    assert grads['gamma'].abs().item() > 0


def test_fused_pass_gradcheck_and_layouts():
    m = randomize_(CrissCross(8, recurrence=1), scale=0.3).double()
    x = torch.randn(2, 8, 3, 5, dtype=torch.float64, requires_grad=True)
    assert _fused_pass_ran(m(x))
    assert torch.autograd.gradcheck(m, (x, ))
    # channels_last input and a non-contiguous upstream gradient
    xc = x.detach().to(memory_format=torch.channels_last).requires_grad_()
    y = m(xc)
    gy = torch.randn(2, 8, 5, 3, dtype=torch.float64).transpose(2, 3)
    y.backward(gy)
    x2 = x.detach().clone().requires_grad_()
    y2 = m(x2)
    y2.backward(gy.contiguous())
    assert_close(y, y2)
    assert_close(xc.grad, x2.grad)


def test_fused_pass_float32_against_the_plain_pass():
    fused = randomize_(CrissCross(64), scale=0.1)
    with torch.no_grad():
        fused.gamma.fill_(0.7)
    plain = CrissCross(64)
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(2, 64, 24, 20)
    outs = []
    for m in (fused, plain):
        xi = x.clone().requires_grad_()
        with fast_paths(m is fused):
            y = m(xi)
        assert _fused_pass_ran(y) == (m is fused)
        y.square().sum().backward()
        outs.append((y.detach(), xi.grad, m.value_conv.weight.grad))
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())


def test_plain_pass_where_the_fused_one_does_not_apply():
    m = randomize_(CrissCross(8, recurrence=2), scale=0.3)
    x = torch.randn(1, 8, 4, 5, requires_grad=True)
    assert _fused_pass_ran(m(x))
    with fast_paths(False):
        assert not _fused_pass_ran(m(x))
    # autocast would not apply inside the fused pass
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert not _fused_pass_ran(m(x))
    # hooks on the convs (the attention-map tool's taps) see every pass
    calls = []
    handle = m.query_conv.register_forward_hook(lambda mod, inp, out: calls.append(out.shape))
    y = m(x)
    handle.remove()
    assert not _fused_pass_ran(y) and calls == [(1, 1, 4, 5)] * 2
    assert_close(y, m(x), rtol=1e-5, atol=1e-6)
    # a traced graph shows the convs and products (FLOP counting, export)
    with torch.no_grad():
        graph = str(torch.jit.trace(m.eval(), x.detach()).inlined_graph)
    assert 'aten::_convolution' in graph and 'aten::bmm' in graph
    assert '_CrissCross' not in graph and 'PythonOp' not in graph


def _mmcv_cc():
    if importlib.util.find_spec('mmcv') is None:
        return None
    try:
        from mmcv.ops import CrissCrossAttention
    except Exception:  # mmcv-lite has no compiled ops
        return None
    return CrissCrossAttention


@pytest.mark.skipif(_mmcv_cc() is None, reason='needs mmcv with ops (the full environment)')
@pytest.mark.parametrize('recurrence', [1, 2])
def test_criss_cross_matches_mmcv(recurrence):
    ours = randomize_(CrissCross(32, recurrence=recurrence), scale=0.3).double().eval()
    ref = _mmcv_cc()(32).double().eval()
    state = ours.state_dict()
    state['gamma.scale'] = state.pop('gamma')
    ref.load_state_dict(state)
    x = torch.randn(2, 32, 6, 9, dtype=torch.float64)
    with torch.no_grad():
        expected = x
        for _ in range(recurrence):
            expected = ref(expected)
        assert_close(ours(x), expected)


@requires_mmdet
def test_criss_cross_config_placement():
    net = build_config_backbone('cc')
    found = plugins_by_block(net, CrissCross, position='after_block')
    assert list(found) == [(3, 2)]  # once, on c5's output
    assert not plugins_by_block(net, CrissCross)  # none in the residual branch
    (m, ) = found[(3, 2)]
    assert (m.in_channels, m.key_channels, m.recurrence) == (2048, 256, 2)
    check_backbone_runs(net)


def test_fake_tensor_tracing():
    """Tracing with fake tensors (make_fx) gives a graph that computes the eager result, and
    leaves the module running eagerly as before."""
    from torch.fx.experimental.proxy_tensor import make_fx
    torch.manual_seed(0)
    m = CrissCross(16).eval()
    with torch.no_grad():
        m.gamma.fill_(0.5)
    x = torch.randn(2, 16, 9, 7)
    with fast_paths(False):
        expected = m(x)
        params = {**dict(m.named_parameters()), **dict(m.named_buffers())}
        graph = make_fx(lambda p, t: torch.func.functional_call(m, p, (t, )),
                        tracing_mode='fake')(params, x)
        out = m(x)
    assert type(out) is torch.Tensor
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(graph(params, x), expected)
