import math

import pytest
import torch

from mmattn.models.channel import FcaNet
from tests.helpers import assert_close, randomize_
from .reference import adaptive_bins_mean, block_mean

# the authors' 'top16' frequencies (cfzd/FcaNet, model/layer.py), (u along H, v along W) on 7x7
TOP16 = list(zip([0, 0, 6, 0, 0, 1, 1, 4, 5, 1, 3, 0, 0, 0, 3, 2],
                 [0, 1, 0, 5, 2, 0, 2, 0, 0, 6, 0, 4, 6, 3, 5, 2]))


def dct(pos, freq, n):
    """Orthonormal DCT-II basis value."""
    scale = math.sqrt(1 / n) if freq == 0 else math.sqrt(2 / n)
    return scale * math.cos(math.pi * freq * (2 * pos + 1) / (2 * n))


def basis_plane(u, v, h, w):
    return torch.tensor([[dct(i, u, h) * dct(j, v, w) for j in range(w)] for i in range(h)],
                        dtype=torch.float64)


def fca_gate(pooled, basis, w1, w2):
    """DCT descriptor per channel, bias-free MLP, sigmoid: (N, C, 1, 1)."""
    y = (pooled * basis).sum((2, 3))
    return torch.sigmoid((y @ w1.t()).relu() @ w2.t())[:, :, None, None]


def test_fcanet_basis_is_the_authors_top16():
    m = FcaNet(64, dct_size=7)
    assert not any(n == 'dct_basis' for n, _ in m.named_parameters())
    assert 'dct_basis' in m.state_dict()
    for c in range(64):
        u, v = TOP16[c // 4]  # 16 contiguous groups of C / 16 channels
        assert_close(m.dct_basis[c].double(), basis_plane(u, v, 7, 7), rtol=1e-6, atol=1e-7)
    # a larger basis samples the same frequencies: (u, v) on 7x7 is (2u, 2v) on 14x14
    m14 = FcaNet(32, dct_size=(14, 28))
    for c in range(32):
        u, v = TOP16[c // 2]
        assert_close(m14.dct_basis[c].double(), basis_plane(2 * u, 4 * v, 14, 28),
                     rtol=1e-6, atol=1e-7)


def test_fcanet_basis_small_and_uneven_channels():
    # fewer channels than frequencies take the best-ranked ones
    m = FcaNet(3)
    for c in range(3):
        assert_close(m.dct_basis[c].double(), basis_plane(*TOP16[c], 7, 7), rtol=1e-6,
                     atol=1e-7)
    # 24 channels: groups of one or two channels, in order, every frequency used
    m = FcaNet(24)
    planes = [basis_plane(u, v, 7, 7).float() for u, v in TOP16]
    used = [next(i for i, p in enumerate(planes) if torch.allclose(m.dct_basis[c], p, atol=1e-6))
            for c in range(24)]
    assert used == sorted(used) and set(used) == set(range(16))


@pytest.mark.parametrize('hw', [(7, 7), (14, 21), (9, 5)])
def test_fcanet_matches_formula(hw):
    m = randomize_(FcaNet(32, reduction=4)).double().eval()
    x = torch.randn(2, 32, *hw, dtype=torch.float64)
    if hw == (7, 7):
        pooled = x
    elif hw == (14, 21):
        pooled = block_mean(x, 7, 7)
    else:  # other sizes are pooled adaptively to the basis size (the authors' detection path)
        pooled = adaptive_bins_mean(x, 7, 7)
    basis = torch.stack([basis_plane(*TOP16[c // 2], 7, 7) for c in range(32)])
    # the basis buffer holds float32 values: float64 agreement to float32 precision
    assert_close(m(x), x * fca_gate(pooled, basis, m.fc1.weight, m.fc2.weight), rtol=1e-6,
                 atol=1e-7)


@pytest.mark.parametrize('hw', [(7, 7), (14, 21), (9, 5), (6, 8)])
def test_fcanet_gradients_and_trace_match_the_authors_ops(hw):
    """Output and input gradient against autograd through the authors' pooling and weighted
    sum, in float64; traces record the authors' ops."""
    m = randomize_(FcaNet(32, reduction=4)).double()
    x = torch.randn(2, 32, *hw, dtype=torch.float64, requires_grad=True)
    gy = torch.randn(2, 32, *hw, dtype=torch.float64)
    basis = m.dct_basis
    pooled = x if hw == (7, 7) else adaptive_bins_mean(x, 7, 7)
    y = (pooled * basis).sum((2, 3))
    expected = x * torch.sigmoid(m.fc2(torch.relu(m.fc1(y))))[:, :, None, None]
    (gx_ref, ) = torch.autograd.grad(expected, x, gy)
    out = m(x)
    (gx, ) = torch.autograd.grad(out, x, gy)
    assert_close(out, expected)
    assert_close(gx, gx_ref)
    with torch.no_grad():
        graph = torch.jit.trace(m.eval(), x.detach())
    kinds = {node.kind() for node in graph.inlined_graph.nodes()}
    assert 'aten::bmm' not in kinds
    assert (hw == (7, 7)) != ('aten::adaptive_avg_pool2d' in kinds)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16], ids=str)
def test_fcanet_pooling_keeps_float32_under_autocast(dtype):
    """The authors' x * basis promotes to the basis' float32; autocast must not turn the
    pooling's products into half-precision ones."""
    m = randomize_(FcaNet(32, reduction=4))
    x = torch.randn(2, 32, 14, 21).requires_grad_()
    expected = (adaptive_bins_mean(x.detach().double(), 7, 7)
                * m.dct_basis.double()).sum((2, 3))
    with torch.autocast('cpu', dtype=dtype):
        y = m.dct_pool(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y.double(), expected, rtol=1e-5, atol=1e-5)


def test_fcanet_initial_state():
    m = FcaNet(256)
    assert m.dct_size == (7, 7) and m.dct_basis.shape == (256, 7, 7)
    assert m.fc1.weight.shape == (16, 256) and m.fc1.bias is None
    assert m.fc2.weight.shape == (256, 16) and m.fc2.bias is None
    assert sum(p.numel() for p in m.parameters()) == 2 * 256 * 16
    assert FcaNet(8).fc1.out_features == 1
    assert FcaNet(512, dct_size=28).dct_basis.shape == (512, 28, 28)
    with pytest.raises(ValueError, match='at least 7'):
        FcaNet(64, dct_size=4)
    with pytest.raises(ValueError, match='freq_sel_method'):
        FcaNet(64, freq_sel_method='top3')
