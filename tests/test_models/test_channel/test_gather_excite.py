import pytest
import torch
import torch.nn.functional as F

from mmattn.models.channel import GatherExcite
from tests.helpers import assert_close, randomize_
from .reference import bn_eval, block_mean


def depthwise_full(x, w):
    """Depthwise conv whose kernel covers the whole map: one weighted sum per channel."""
    return (x * w[:, 0][None]).sum((2, 3))[:, :, None, None]


def upsample_blocks(g, e):
    """Each gather cell's gate over its e x e block of positions."""
    return g.repeat_interleave(e, 2).repeat_interleave(e, 3)


def test_theta_minus_global_matches_formula():
    m = GatherExcite(32).double()
    x = torch.randn(2, 32, 5, 7, dtype=torch.float64)
    assert_close(m(x), x * torch.sigmoid(x.mean((2, 3), keepdim=True)))


@pytest.mark.parametrize('e', [2, 4, 8])
def test_theta_minus_extent_matches_formula(e):
    m = GatherExcite(8, extent=e).double()
    h, w = 2 * e, 3 * e
    x = torch.randn(2, 8, h, w, dtype=torch.float64)
    # cell (i, j): mean over the (2e-1)-wide window around position (i*e, j*e), cut at the map
    cells = x.new_zeros(2, 8, h // e, w // e)
    for i in range(h // e):
        for j in range(w // e):
            win = x[:, :, max(0, i * e - e + 1):i * e + e, max(0, j * e - e + 1):j * e + e]
            cells[:, :, i, j] = win.mean((2, 3))
    assert_close(m(x), x * upsample_blocks(torch.sigmoid(cells), e))


@pytest.mark.parametrize('hw', [(7, 7), (14, 21)])
def test_theta_global_matches_formula(hw):
    m = randomize_(GatherExcite(16, variant='theta', feat_size=7)).double().eval()
    x = torch.randn(3, 16, *hw, dtype=torch.float64)
    # the authors' kernel covers the map; other sizes are first pooled to the kernel's size
    pooled = block_mean(x, 7, 7)
    z = depthwise_full(pooled, m.gather_convs[0].weight)
    expected = x * torch.sigmoid(bn_eval(z, m.gather_norms[0]))
    assert_close(m(x), expected)


def test_theta_plus_global_matches_formula():
    m = randomize_(GatherExcite(32, variant='theta-plus', feat_size=(4, 6))).double().eval()
    x = torch.randn(2, 32, 4, 6, dtype=torch.float64)
    z = bn_eval(depthwise_full(x, m.gather_convs[0].weight), m.gather_norms[0]).relu()
    z = z.flatten(1)
    z = (z @ m.fc1.weight.flatten(1).t() + m.fc1.bias).relu()
    z = z @ m.fc2.weight.flatten(1).t() + m.fc2.bias
    assert_close(m(x), x * torch.sigmoid(z)[:, :, None, None])


@pytest.mark.parametrize('variant', ['theta', 'theta-plus'])
def test_theta_extent_matches_formula(variant):
    e = 4
    m = randomize_(GatherExcite(8, variant=variant, extent=e)).double().eval()
    x = torch.randn(2, 8, 8, 12, dtype=torch.float64)
    # log2(4) = 2 depthwise 3x3 stride-2 convs, each with BN, ReLU between them
    y = x
    for i in range(2):
        y = F.conv2d(y, m.gather_convs[i].weight, stride=2, padding=1, groups=8)
        y = bn_eval(y, m.gather_norms[i])
        if i == 0 or variant == 'theta-plus':
            y = y.relu()
    if variant == 'theta-plus':
        y = torch.einsum('oc,nchw->nohw', m.fc1.weight.flatten(1), y)
        y = (y + m.fc1.bias[None, :, None, None]).relu()
        y = torch.einsum('oc,nchw->nohw', m.fc2.weight.flatten(1), y)
        y = y + m.fc2.bias[None, :, None, None]
    assert_close(m(x), x * upsample_blocks(torch.sigmoid(y), e))


def test_gather_excite_initial_state():
    assert sum(p.numel() for p in GatherExcite(256).parameters()) == 0
    assert sum(p.numel() for p in GatherExcite(256, extent=8).parameters()) == 0
    m = GatherExcite(256, variant='theta', feat_size=56)
    (conv, ) = m.gather_convs
    assert conv.weight.shape == (256, 1, 56, 56) and conv.bias is None and conv.groups == 256
    assert isinstance(m.gather_norms[0], torch.nn.BatchNorm2d)
    assert not hasattr(m, 'fc1')
    m = GatherExcite(256, variant='theta-plus')
    assert m.gather_convs[0].kernel_size == (7, 7)
    assert m.fc1.weight.shape == (16, 256, 1, 1) and m.fc1.bias is not None
    assert m.fc2.weight.shape == (256, 16, 1, 1) and m.fc2.bias is not None
    assert GatherExcite(8, variant='theta-plus').fc1.out_channels == 1
    m = GatherExcite(64, variant='theta', extent=8)
    assert len(m.gather_convs) == 3
    assert all(c.kernel_size == (3, 3) and c.stride == (2, 2) and c.groups == 64
               and c.bias is None for c in m.gather_convs)
    with pytest.raises(ValueError, match='variant'):
        GatherExcite(64, variant='theta_plus')
    for bad in (3, 6, 1, 0):
        with pytest.raises(ValueError, match='extent'):
            GatherExcite(64, extent=bad)


def test_gather_excite_any_input_size():
    m = randomize_(GatherExcite(8, variant='theta', feat_size=7)).eval()
    for hw in [(1, 1), (3, 5), (7, 7), (30, 17)]:
        x = torch.randn(2, 8, *hw)
        assert m(x).shape == x.shape and torch.isfinite(m(x)).all()
