import pytest
import torch
import torch.nn.functional as F

from mmattn.models.spatial import ResidualAttention
from tests.helpers import assert_close, randomize_
from .reference import bn_eval


def unit(x, u):
    """The prototxt's residual unit: pre-activation bottleneck, identity shortcut."""
    y = F.conv2d(torch.relu(bn_eval(x, u.bn1)), u.conv1.weight)
    y = F.conv2d(torch.relu(bn_eval(y, u.bn2)), u.conv2.weight, padding=1)
    y = F.conv2d(torch.relu(bn_eval(y, u.bn3)), u.conv3.weight)
    return x + y


def units(x, seq):
    for u in seq:
        x = unit(x, u)
    return x


def pool(x):
    return F.max_pool2d(x, 3, 2, padding=1)


def up(x, like):
    return F.interpolate(x, size=like.shape[2:], mode='bilinear', align_corners=True)


def resatt_reference(x, m):
    """The Attention-56 modules unrolled, with the prototxt's blob names.

    1 level = AttentionC, 2 levels = AttentionB, 3 levels = AttentionA.
    """
    res1 = units(x, m.pre)                                   # trunk/res1 (the p unit)
    trunk = units(res1, m.trunk)                             # trunk/res3
    levels = m.num_downsamples
    if levels == 1:
        low = units(pool(res1), m.down[0])                   # res1_1, res1_2
        mask_in = up(low, trunk)                             # interp_1
    elif levels == 2:
        res1_1 = units(pool(res1), m.down[0])
        res2_2 = units(pool(res1_1), m.down[1])              # res2_1, res2_2
        up1 = units(units(res1_1, m.skips[0]) + up(res2_2, res1_1), m.up[0])
        mask_in = up(up1, trunk)
    else:
        res1_1 = units(pool(res1), m.down[0])
        res2_1 = units(pool(res1_1), m.down[1])
        res3_2 = units(pool(res2_1), m.down[2])              # res3_1, res3_2
        up2 = units(units(res2_1, m.skips[1]) + up(res3_2, res2_1), m.up[1])
        up1 = units(units(res1_1, m.skips[0]) + up(up2, res1_1), m.up[0])
        mask_in = up(up1, trunk)
    y = F.conv2d(torch.relu(bn_eval(mask_in, m.mask_bn1)), m.mask_conv1.weight)   # linear_1
    y = F.conv2d(torch.relu(bn_eval(y, m.mask_bn2)), m.mask_conv2.weight)         # linear_2
    mask = torch.sigmoid(y)
    fusion = trunk * mask + trunk
    return units(fusion, m.post)


@pytest.mark.parametrize('levels', [1, 2, 3])
@pytest.mark.parametrize('hw', [(16, 16), (9, 14), (3, 2), (1, 1)])
def test_resatt_matches_formula(levels, hw):
    m = randomize_(ResidualAttention(8, num_downsamples=levels), scale=0.3).double().eval()
    x = torch.randn(2, 8, *hw, dtype=torch.float64)
    assert_close(m(x), resatt_reference(x, m))


def test_resatt_without_pre_post_units_is_one_plus_mask_times_trunk():
    m = randomize_(ResidualAttention(8, p=0, t=1, num_downsamples=2), scale=0.3).double().eval()
    x = torch.randn(2, 8, 12, 10, dtype=torch.float64)
    trunk = units(x, m.trunk)
    mask = m.soft_mask(x)
    assert mask.shape == x.shape and bool(((mask > 0) & (mask < 1)).all())
    assert_close(m(x), (1 + mask) * trunk)
    assert_close(m(x), resatt_reference(x, m))


def test_resatt_initial_state():
    m = ResidualAttention(256)
    # p=1, t=2, r=1: 1 pre unit, 2 trunk units, 2r units at the single level, 1 post unit
    assert (len(m.pre), len(m.trunk), len(m.post)) == (1, 2, 1)
    assert [len(d) for d in m.down] == [2] and len(m.skips) == 0 and len(m.up) == 0
    u = m.trunk[0]
    assert u.conv1.weight.shape == (64, 256, 1, 1) and u.conv1.bias is None
    assert u.conv2.weight.shape == (64, 64, 3, 3) and u.conv2.bias is None
    assert u.conv3.weight.shape == (256, 64, 1, 1) and u.conv3.bias is None
    assert u.bn1.num_features == 256 and u.bn2.num_features == 64
    assert m.mask_conv1.bias is None and m.mask_conv2.bias is None
    unit_params = 256 * 64 * 2 + 64 * 64 * 9 + 2 * (256 + 64 + 64)
    head_params = 2 * 256 * 256 + 2 * 2 * 256
    assert sum(p.numel() for p in m.parameters()) == 6 * unit_params + head_params
    # AttentionA (3 levels): down 1 + 1 + 2 units, 2 skips, 2 up units
    a = ResidualAttention(256, num_downsamples=3)
    assert [len(d) for d in a.down] == [1, 1, 2]
    assert [len(s) for s in a.skips] == [1, 1] and [len(s) for s in a.up] == [1, 1]
    assert ResidualAttention(2).trunk[0].conv1.out_channels == 1
    with pytest.raises(ValueError):
        ResidualAttention(64, num_downsamples=0)
