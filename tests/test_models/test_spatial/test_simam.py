import pytest
import torch

from mmattn.models.spatial import SimAM
from tests.helpers import assert_close


def simam_reference(x, e_lambda):
    """SimAM written out channel by channel, n = H * W - 1."""
    out = torch.empty_like(x)
    n = x.shape[2] * x.shape[3] - 1
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            v = x[i, c]
            d = (v - v.mean()) ** 2
            energy = d / (4 * (d.sum() / n + e_lambda)) + 0.5
            out[i, c] = v * torch.sigmoid(energy)
    return out


@pytest.mark.parametrize('e_lambda', [1e-4, 0.1])
@pytest.mark.parametrize('hw', [(5, 7), (1, 5), (2, 1), (8, 8)])
def test_simam_matches_formula(e_lambda, hw):
    m = SimAM(6, e_lambda=e_lambda)
    x = torch.randn(2, 6, *hw, dtype=torch.float64)
    assert_close(m(x), simam_reference(x, e_lambda))


def test_simam_single_position():
    """At 1x1, n = 0: the module clamps n to 1, so y = 0.5 and out = x * sigmoid(0.5)."""
    x = torch.randn(3, 4, 1, 1, dtype=torch.float64, requires_grad=True)
    out = SimAM(4)(x)
    assert_close(out, x * torch.sigmoid(torch.tensor(0.5, dtype=torch.float64)))
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_simam_initial_state():
    m = SimAM(64)
    assert m.e_lambda == 1e-4
    assert len(list(m.parameters())) == 0 and len(list(m.buffers())) == 0
    with pytest.raises(ValueError):
        SimAM(64, e_lambda=0)
