import pytest
import torch

from mmattn.models.spatial import SelectiveKernel
from tests.helpers import assert_close, randomize_
from .reference import bn_eval, grouped_conv


def sk_reference(x, m):
    """SK written out: M branches (one conv per group), fuse, softmax across branches."""
    c, groups = x.shape[1], m.groups
    branches = []
    for i, b in enumerate(m.branches):
        d = i + 1
        y = grouped_conv(x, b.conv.weight, groups, padding=d, dilation=d)
        branches.append(torch.relu(bn_eval(y, b.bn)))
    s = sum(branches).mean(dim=(2, 3))                                       # (N, C)
    z = torch.relu(bn_eval(s @ m.fc_reduce.conv.weight[:, :, 0, 0].t(), m.fc_reduce.bn))
    w_sel = m.fc_select.weight[:, :, 0, 0]
    logits = torch.stack([z @ w_sel[i * c:(i + 1) * c].t() for i in range(len(branches))])
    a = torch.exp(logits) / torch.exp(logits).sum(dim=0)                      # across branches
    return sum(a[i][:, :, None, None] * branches[i] for i in range(len(branches)))


@pytest.mark.parametrize('num_branches', [2, 3])
@pytest.mark.parametrize('channels,expected_groups,hw', [(64, 32, (6, 9)), (48, 24, (5, 5)),
                                                         (7, 7, (1, 3))])
def test_sk_matches_formula(num_branches, channels, expected_groups, hw):
    m = randomize_(SelectiveKernel(channels, num_branches=num_branches)).double().eval()
    assert m.groups == expected_groups
    x = torch.randn(2, channels, *hw, dtype=torch.float64)
    assert_close(m(x), sk_reference(x, m))


def test_sk_initial_state():
    m = SelectiveKernel(128)
    assert m.groups == 32 and m.attn_channels == 32       # d = max(128 // 16, 32)
    assert SelectiveKernel(1024).attn_channels == 64
    for i, b in enumerate(m.branches):
        conv = b.conv
        assert conv.weight.shape == (128, 4, 3, 3) and conv.bias is None
        assert conv.dilation == (i + 1, i + 1) and conv.padding == (i + 1, i + 1)
        assert conv.stride == (1, 1)
    assert len(m.branches) == 2
    assert m.fc_reduce.conv.weight.shape == (32, 128, 1, 1) and m.fc_reduce.conv.bias is None
    assert m.fc_select.weight.shape == (2 * 128, 32, 1, 1) and m.fc_select.bias is None
    # the prototxt's Gaussian(0.01) filler for the fuse and select convs, kept after a
    # backbone-wide Kaiming init
    big = SelectiveKernel(1024, init_cfg=dict(type='Kaiming', layer='Conv2d'))
    big.init_weights()
    for w in (big.fc_reduce.conv.weight, big.fc_select.weight):
        assert abs(w.std().item() - 0.01) < 0.001
    # (Kaiming with fan_out would give the select conv std sqrt(2 / 2048) = 0.031)
    kaiming_std = (2 / (1024 * 9)) ** 0.5
    assert abs(big.branches[0].conv.weight.std().item() - kaiming_std) < 0.001
    # so the selection starts nearly uniform across the branches
    big.eval()
    x = torch.randn(2, 1024, 4, 4)
    with torch.no_grad():
        feats = [b(x) for b in big.branches]
        torch.testing.assert_close(big(x), (feats[0] + feats[1]) / 2, rtol=0.05, atol=0.05)
