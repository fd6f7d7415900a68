import importlib.util

import pytest
import torch

from mmattn.models.context import CrissCross
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


@pytest.mark.parametrize('hw', [(5, 7), (1, 4), (4, 1), (1, 1)])
def test_criss_cross_matches_formula(hw):
    m = randomize_(CrissCross(16, recurrence=1), scale=0.3).double().eval()
    x = torch.randn(2, 16, *hw, dtype=torch.float64)
    with torch.no_grad():
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
