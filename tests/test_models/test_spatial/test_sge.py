import pytest
import torch

from mmattn.models.spatial import SGE
from tests.helpers import assert_close, randomize_


def sge_reference(x, weight, bias, groups, eps=1e-5):
    """SGE written out group by group, with torch's unbiased std plus eps after the root."""
    n, c, h, w = x.shape
    cg = c // groups
    out = torch.empty_like(x)
    for i in range(n):
        for g in range(groups):
            xs = x[i, g * cg:(g + 1) * cg]                       # (cg, H, W)
            xn = (xs * xs.mean(dim=(1, 2))[:, None, None]).sum(dim=0)
            if h * w > 1:
                t = (xn - xn.mean()) / (xn.flatten().std(unbiased=True) + eps)
            else:
                t = torch.zeros_like(xn)
            out[i, g * cg:(g + 1) * cg] = xs * torch.sigmoid(t * weight[g] + bias[g])
    return out


@pytest.mark.parametrize('channels,groups,expected_groups,hw', [
    (128, 64, 64, (5, 7)), (64, 8, 8, (6, 6)),
    # not divisible: the largest divisor of C not above the requested groups
    (48, 64, 48, (4, 5)), (96, 64, 48, (3, 8)), (40, 16, 10, (7, 2)), (3, 64, 3, (5, 5)),
])
def test_sge_matches_formula(channels, groups, expected_groups, hw):
    m = randomize_(SGE(channels, groups=groups)).double()
    assert m.groups == expected_groups and m.requested_groups == groups
    x = torch.randn(2, channels, *hw, dtype=torch.float64)
    assert_close(m(x), sge_reference(x, m.weight.flatten(), m.bias.flatten(), expected_groups))


def test_sge_single_position_is_a_constant_gate():
    m = randomize_(SGE(64, groups=8)).double()
    x = torch.randn(3, 64, 1, 1, dtype=torch.float64, requires_grad=True)
    out = m(x)
    gate = torch.sigmoid(m.bias.flatten()).repeat_interleave(8)[None, :, None, None]
    assert_close(out, x * gate)
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(m.weight.grad).all()


def test_sge_constant_map_has_finite_gradients():
    # a group whose every position is equal (dead ReLUs) has std 0
    m = randomize_(SGE(16, groups=4))
    x = torch.zeros(2, 16, 4, 4, requires_grad=True)
    m(x).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(m.weight.grad).all()


def test_sge_initial_state():
    m = SGE(256)
    assert m.groups == 64
    assert m.weight.shape == (1, 64, 1, 1) and torch.all(m.weight == 0)
    assert m.bias.shape == (1, 64, 1, 1) and torch.all(m.bias == 1)
    assert sum(p.numel() for p in m.parameters()) == 128
    # weight 0, bias 1: a constant gate sigmoid(1)
    x = torch.randn(2, 256, 6, 5)
    torch.testing.assert_close(m(x), x * torch.sigmoid(torch.tensor(1.0)))
    with torch.no_grad():
        m.weight.fill_(3.0)
    m.init_weights()
    assert torch.all(m.weight == 0) and torch.all(m.bias == 1)
