import pytest
import torch
import torch.nn.functional as F

from mmattn.models.spatial import CBAM
from tests.helpers import assert_close, randomize_
from .reference import bn_eval


def cbam_reference(x, m, spatial=True):
    """CBAM written out: shared MLP on avg and max vectors, summed; then the Z-pool gate."""
    def mlp(v):
        return torch.relu(v @ m.fc1.weight.t() + m.fc1.bias) @ m.fc2.weight.t() + m.fc2.bias

    avg = x.mean(dim=(2, 3))
    mx = x.flatten(2).max(dim=2).values
    y = x * torch.sigmoid(mlp(avg) + mlp(mx))[:, :, None, None]
    if not spatial:
        return y
    gate = m.spatial_gate
    pooled = torch.stack([y.max(dim=1).values, y.mean(dim=1)], dim=1)   # max first
    s = bn_eval(F.conv2d(pooled, gate.conv.weight, padding=3), gate.bn)
    return y * torch.sigmoid(s)


@pytest.mark.parametrize('channels,reduction,hw', [(64, 16, (5, 9)), (32, 4, (7, 7)),
                                                   (8, 16, (1, 6)), (24, 16, (11, 3))])
def test_cbam_matches_formula(channels, reduction, hw):
    m = randomize_(CBAM(channels, reduction=reduction)).double().eval()
    x = torch.randn(3, channels, *hw, dtype=torch.float64)
    assert_close(m(x), cbam_reference(x, m))


def test_cbam_no_spatial_matches_formula():
    m = randomize_(CBAM(32, no_spatial=True)).double().eval()
    assert m.spatial_gate is None
    x = torch.randn(2, 32, 6, 4, dtype=torch.float64)
    assert_close(m(x), cbam_reference(x, m, spatial=False))


def test_cbam_initial_state():
    m = CBAM(256)
    assert m.fc1.weight.shape == (16, 256) and m.fc1.bias is not None
    assert m.fc2.weight.shape == (256, 16) and m.fc2.bias is not None
    conv, bn = m.spatial_gate.conv, m.spatial_gate.bn
    assert conv.weight.shape == (1, 2, 7, 7) and conv.bias is None and conv.padding == (3, 3)
    assert isinstance(bn, torch.nn.BatchNorm2d) and bn.eps == 1e-5 and bn.momentum == 0.01
    # the authors' ResNet init zeroes the spatial gate's BN weight: a constant 0.5 gate
    assert torch.all(bn.weight == 0) and torch.all(bn.bias == 0)
    # 2 C C/r + C/r + C for the MLP, 2*7*7 for the conv, 2 for the BN
    assert sum(p.numel() for p in m.parameters()) == 2 * 256 * 16 + 16 + 256 + 98 + 2
    # the hidden width never reaches 0
    assert CBAM(8).fc1.out_features == 1
    # at the authors' start, the spatial gate halves the channel-gated features
    m.eval()
    x = torch.randn(2, 256, 5, 6)
    with torch.no_grad():
        expected = 0.5 * (x * torch.sigmoid(
            m.fc2(m.act(m.fc1(x.mean(dim=(2, 3))))) +
            m.fc2(m.act(m.fc1(x.amax(dim=(2, 3))))))[:, :, None, None])
        torch.testing.assert_close(m(x), expected)


def test_cbam_zero_init_survives_a_backbone_init():
    # mmdet's ResNet init sets every BN weight to 1; the module's init runs after and restores 0
    m = CBAM(64, init_cfg=dict(type='Constant', val=1, layer='_BatchNorm'))
    m.init_weights()
    assert torch.all(m.spatial_gate.bn.weight == 0)


def test_cbam_rejects_unknown_pool():
    with pytest.raises(ValueError, match='pool_types'):
        CBAM(64, pool_types=('avg', 'lse'))
