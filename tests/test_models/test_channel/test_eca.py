import pytest
import torch

from mmattn.models.channel import ECA
from tests.helpers import assert_close, randomize_


def eca_reference(x, w):
    """GAP, zero-padded cross-correlation of the channel vector with w, sigmoid, product."""
    k = w.numel()
    s = x.mean(dim=(2, 3))
    pad = (k - 1) // 2
    sp = torch.cat([s.new_zeros(s.shape[0], pad), s, s.new_zeros(s.shape[0], pad)], 1)
    z = torch.stack([sum(w[j] * sp[:, c + j] for j in range(k)) for c in range(s.shape[1])], 1)
    return x * torch.sigmoid(z)[:, :, None, None]


@pytest.mark.parametrize('channels,kernel_size', [(16, 3), (64, None), (5, 5), (256, None)])
def test_eca_matches_formula(channels, kernel_size):
    m = randomize_(ECA(channels, kernel_size=kernel_size)).double().eval()
    x = torch.randn(2, channels, 5, 6, dtype=torch.float64)
    assert_close(m(x), eca_reference(x, m.conv.weight.flatten()))


@pytest.mark.parametrize('channels,k', [(1, 1), (4, 1), (8, 3), (64, 3), (127, 3), (128, 5),
                                        (256, 5), (512, 5), (1024, 5), (2047, 5), (2048, 7)])
def test_eca_adaptive_kernel(channels, k):
    # t = int(|log2(C) + 1| / 2), k = t if t is odd else t + 1
    m = ECA(channels)
    assert m.kernel_size == k and m.conv.kernel_size == (k, )
    assert m.conv.padding == ((k - 1) // 2, )


def test_eca_initial_state():
    m = ECA(256, kernel_size=3)
    assert m.conv.weight.shape == (1, 1, 3) and m.conv.bias is None
    assert sum(p.numel() for p in m.parameters()) == 3
    # adaptive by default
    assert ECA(2048).conv.weight.shape == (1, 1, 7)
    # the paper's constants are exposed
    assert ECA(256, gamma=1, b=0).kernel_size == 9
    for bad in (4, 0, -3):
        with pytest.raises(ValueError, match='odd'):
            ECA(64, kernel_size=bad)
