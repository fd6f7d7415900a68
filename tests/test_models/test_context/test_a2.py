import pytest
import torch

from mmattn.models.context import DoubleAttention
from tests.helpers import assert_close, randomize_, requires_mmdet
from .context_helpers import build_config_backbone, check_backbone_runs, plugins_by_block


def a2_reference(m, x):
    """The A^2 block written out per sample and per position."""
    n, c, h, w = x.shape
    out = torch.empty_like(x)

    def proj(conv, xi):
        return conv.weight.flatten(1) @ xi.reshape(c, h * w) + conv.bias[:, None]

    for i in range(n):
        a, b, v = proj(m.conv_a, x[i]), proj(m.conv_b, x[i]), proj(m.conv_v, x[i])
        # gather: c_n attention maps, each normalised over the positions
        maps = torch.exp(b) / torch.exp(b).sum(dim=1, keepdim=True)
        descriptors = torch.stack([(a * maps[j]).sum(dim=1) for j in range(m.c_n)], dim=1)
        # distribute: at each position, weights over the c_n descriptors summing to 1
        z = torch.empty(m.c_m, h * w, dtype=x.dtype)
        for p in range(h * w):
            weights = torch.exp(v[:, p]) / torch.exp(v[:, p]).sum()
            z[:, p] = descriptors @ weights
        y = m.conv_out.weight.flatten(1) @ z + m.conv_out.bias[:, None]
        out[i] = x[i] + y.reshape(c, h, w)
    return out


@pytest.mark.parametrize('c_m,c_n', [(None, None), (6, 3), (3, 1)])
def test_a2_matches_formula(c_m, c_n):
    m = randomize_(DoubleAttention(16, c_m=c_m, c_n=c_n)).double().eval()
    x = torch.randn(3, 16, 4, 5, dtype=torch.float64)
    with torch.no_grad():
        assert_close(m(x), a2_reference(m, x))


def test_a2_samples_are_independent():
    # a softmax over the batch axis (a known re-implementation bug) mixes samples
    m = randomize_(DoubleAttention(16)).eval()
    x = torch.randn(4, 16, 5, 5)
    with torch.no_grad():
        batched = m(x)
        for i in range(4):
            torch.testing.assert_close(batched[i:i + 1], m(x[i:i + 1]), rtol=1e-5, atol=1e-6)


def test_a2_initial_state():
    m = DoubleAttention(256)
    assert (m.c_m, m.c_n) == (64, 64)
    assert m.conv_a.weight.shape == (64, 256, 1, 1) and m.conv_a.bias is not None
    assert m.conv_b.weight.shape == (64, 256, 1, 1) and m.conv_v.weight.shape == (64, 256, 1, 1)
    assert m.conv_out.weight.shape == (256, 64, 1, 1) and m.conv_out.bias is not None
    c = DoubleAttention(64, c_m=32, c_n=8)
    assert (c.conv_a.out_channels, c.conv_b.out_channels, c.conv_v.out_channels) == (32, 8, 8)
    assert c.conv_out.in_channels == 32
    assert (DoubleAttention(2).c_m, DoubleAttention(2).c_n) == (1, 1)
    params = sum(p.numel() for p in m.parameters())
    assert params == 3 * (256 * 64 + 64) + 64 * 256 + 256
    with pytest.raises(ValueError):
        DoubleAttention(16, c_m=0)


@requires_mmdet
def test_a2_config_placement():
    net = build_config_backbone('a2')
    found = plugins_by_block(net, DoubleAttention)
    assert list(found) == [(3, 2)]  # once, at the end of c5
    (m, ) = found[(3, 2)]
    assert (m.in_channels, m.c_m, m.c_n) == (2048, 512, 512)
    check_backbone_runs(net)
