import pytest
import torch

from mmattn.models.channel import SPA
from tests.helpers import assert_close, randomize_
from .reference import adaptive_bins_mean, block_mean


def spa_reference(x, w1, w2, pool=block_mean):
    """Pools at 1, 2, 4 flattened channel-major and concatenated, bias-free MLP, sigmoid."""
    n = x.shape[0]
    y = torch.cat([pool(x, s, s).reshape(n, -1) for s in (1, 2, 4)], 1)
    g = torch.sigmoid((y @ w1.t()).relu() @ w2.t())
    return x * g[:, :, None, None]


@pytest.mark.parametrize('channels,reduction', [(32, 16), (16, 4)])
def test_spa_matches_formula(channels, reduction):
    m = randomize_(SPA(channels, reduction=reduction)).double().eval()
    x = torch.randn(2, channels, 8, 12, dtype=torch.float64)
    assert_close(m(x), spa_reference(x, m.fc1.weight, m.fc2.weight))
    # any size: adaptive bins
    x = torch.randn(2, channels, 7, 5, dtype=torch.float64)
    assert_close(m(x), spa_reference(x, m.fc1.weight, m.fc2.weight, adaptive_bins_mean))


def test_spa_initial_state():
    m = SPA(256)
    assert m.fc1.weight.shape == (16, 21 * 256) and m.fc1.bias is None
    assert m.fc2.weight.shape == (256, 16) and m.fc2.bias is None
    assert sum(p.numel() for p in m.parameters()) == 21 * 256 * 16 + 16 * 256
    assert SPA(8).fc1.out_features == 1
    assert SPA(8, pool_sizes=(1, 2)).fc1.in_features == 5 * 8
