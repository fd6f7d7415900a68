import pytest
import torch

from mmattn.models.spatial import CoordAttention
from tests.helpers import assert_close, randomize_
from .reference import bn_eval


def coordatt_reference(x, m):
    """Coordinate attention written out with einsum on the pooled strips."""
    h = x.shape[2]
    strips = torch.cat([x.mean(dim=3), x.mean(dim=2)], dim=2)                # (N, C, H+W)
    y = torch.einsum('mc,nck->nmk', m.conv1.weight[:, :, 0, 0], strips)
    y = bn_eval(y + m.conv1.bias[None, :, None], m.bn1)
    y = y * torch.clamp(y + 3, 0, 6) / 6                                       # h_swish
    a_h = torch.sigmoid(torch.einsum('cm,nmk->nck', m.conv_h.weight[:, :, 0, 0], y[:, :, :h])
                        + m.conv_h.bias[None, :, None])
    a_w = torch.sigmoid(torch.einsum('cm,nmk->nck', m.conv_w.weight[:, :, 0, 0], y[:, :, h:])
                        + m.conv_w.bias[None, :, None])
    return x * a_h[:, :, :, None] * a_w[:, :, None, :]


@pytest.mark.parametrize('channels,hw', [(64, (5, 9)), (512, (3, 3)), (5, (1, 7)),
                                         (32, (10, 2))])
def test_coordatt_matches_formula(channels, hw):
    m = randomize_(CoordAttention(channels)).double().eval()
    x = torch.randn(2, channels, *hw, dtype=torch.float64)
    assert_close(m(x), coordatt_reference(x, m))


def test_coordatt_initial_state():
    m = CoordAttention(1024)
    assert m.mip == 32                                # 1024 // 32
    assert m.conv1.weight.shape == (32, 1024, 1, 1) and m.conv1.bias is not None
    assert m.conv_h.weight.shape == (1024, 32, 1, 1) and m.conv_h.bias is not None
    assert m.conv_w.weight.shape == (1024, 32, 1, 1) and m.conv_w.bias is not None
    assert isinstance(m.bn1, torch.nn.BatchNorm2d)
    assert isinstance(m.act, torch.nn.Hardswish)
    # mip = max(8, C // 32)
    assert CoordAttention(64).mip == 8 and CoordAttention(1).mip == 8
    assert CoordAttention(512).mip == 16
