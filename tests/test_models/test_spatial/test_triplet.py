import pytest
import torch

from mmattn.models.spatial import TripletAttention
from tests.helpers import assert_close, randomize_
from .reference import zpool_gate


def triplet_reference(x, m):
    """Triplet attention written as three gates, each broadcast back without un-permuting.

    cw: pool over H, gate on the C x W plane; hc: pool over W, gate on the H x C plane;
    hw: pool over C, gate on the H x W plane; the plain mean of the three gated tensors.
    """
    g_cw = zpool_gate(x.transpose(1, 2), m.cw.conv.weight, m.cw.bn)            # (N, C, W)
    out_cw = x * g_cw[:, :, None, :]
    g_hc = zpool_gate(x.permute(0, 3, 2, 1), m.hc.conv.weight, m.hc.bn)        # (N, H, C)
    out_hc = x * g_hc.transpose(1, 2)[:, :, :, None]
    if m.hw is None:
        return (out_cw + out_hc) / 2
    g_hw = zpool_gate(x, m.hw.conv.weight, m.hw.bn)                            # (N, H, W)
    return (x * g_hw[:, None] + out_cw + out_hc) / 3


@pytest.mark.parametrize('no_spatial', [False, True])
@pytest.mark.parametrize('channels,hw', [(16, (5, 9)), (9, (12, 4)), (3, (1, 1)), (32, (7, 7))])
def test_triplet_matches_formula(no_spatial, channels, hw):
    m = randomize_(TripletAttention(channels, no_spatial=no_spatial)).double().eval()
    x = torch.randn(2, channels, *hw, dtype=torch.float64)
    assert_close(m(x), triplet_reference(x, m))


def test_triplet_branches_see_their_own_planes():
    """Swapping the cw and hc gates' weights must change the output (C != H != W)."""
    m = randomize_(TripletAttention(6)).double().eval()
    x = torch.randn(2, 6, 8, 10, dtype=torch.float64)
    out = m(x)
    with torch.no_grad():
        w = m.cw.conv.weight.clone()
        m.cw.conv.weight.copy_(m.hc.conv.weight)
        m.hc.conv.weight.copy_(w)
    assert not torch.allclose(m(x), out)


def test_triplet_initial_state():
    m = TripletAttention(256)
    for gate in (m.cw, m.hc, m.hw):
        assert gate.conv.weight.shape == (1, 2, 7, 7) and gate.conv.bias is None
        assert gate.bn.eps == 1e-5 and gate.bn.momentum == 0.01
    # only the hw branch (the authors' SpatialGate) starts with a zero BN weight
    assert torch.all(m.hw.bn.weight == 0)
    assert torch.all(m.cw.bn.weight == 1) and torch.all(m.hc.bn.weight == 1)
    assert sum(p.numel() for p in m.parameters()) == 3 * (98 + 2)
    assert TripletAttention(256, no_spatial=True).hw is None
    m.eval()
    x = torch.randn(2, 256, 4, 5)
    with torch.no_grad():
        hw_only = m.hw(x)
    torch.testing.assert_close(hw_only, 0.5 * x)
