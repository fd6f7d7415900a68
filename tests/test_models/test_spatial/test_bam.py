import pytest
import torch
import torch.nn.functional as F

from mmattn.models.spatial import BAM
from tests.helpers import assert_close, randomize_
from .reference import bn_eval


def bam_reference(x, m, fusion):
    """BAM written out: (1 + sigmoid(Mc * Ms)) * x, or with Mc + Ms for the paper's form."""
    z = x.mean(dim=(2, 3)) @ m.channel_fc1.weight.t() + m.channel_fc1.bias
    z = torch.relu(bn_eval(z, m.channel_norm))
    mc = (z @ m.channel_fc2.weight.t() + m.channel_fc2.bias)[:, :, None, None]

    def conv_bn_relu(t, block, pad=0, dil=1):
        t = F.conv2d(t, block.conv.weight, block.conv.bias, padding=pad, dilation=dil)
        return torch.relu(bn_eval(t, block.bn))

    s = conv_bn_relu(x, m.spatial_reduce)
    for block in m.spatial_dilated:
        s = conv_bn_relu(s, block, pad=4, dil=4)
    ms = F.conv2d(s, m.spatial_out.weight, m.spatial_out.bias)
    att = mc * ms if fusion == 'product' else mc + ms
    return (1 + torch.sigmoid(att)) * x


@pytest.mark.parametrize('fusion', ['product', 'sum'])
@pytest.mark.parametrize('channels,reduction,hw', [(64, 16, (6, 13)), (32, 4, (9, 9)),
                                                   (8, 16, (3, 1))])
def test_bam_matches_formula(fusion, channels, reduction, hw):
    m = randomize_(BAM(channels, reduction=reduction, fusion=fusion)).double().eval()
    x = torch.randn(2, channels, *hw, dtype=torch.float64)
    assert_close(m(x), bam_reference(x, m, fusion))


def test_bam_default_is_authors_product():
    assert BAM(64).fusion == 'product'
    assert BAM.variants == {'paper_sum': dict(fusion='sum')}


def test_bam_pools_non_square_maps_over_every_position():
    # the authors' pooling window is the map's height: on a 2x6 map it would see 2x2 only
    m = randomize_(BAM(16, reduction=4)).double().eval()
    x = torch.zeros(1, 16, 2, 6, dtype=torch.float64)
    x[..., 4:] = 1.0    # nothing in the first 2x2 window
    mc = m.channel_attention(x)
    z = torch.relu(bn_eval(x.mean(dim=(2, 3)) @ m.channel_fc1.weight.t() + m.channel_fc1.bias,
                           m.channel_norm))
    assert_close(mc[:, :, 0, 0], z @ m.channel_fc2.weight.t() + m.channel_fc2.bias)


def test_bam_initial_state():
    m = BAM(256)
    assert m.channel_fc1.weight.shape == (16, 256) and m.channel_fc1.bias is not None
    assert m.channel_fc2.weight.shape == (256, 16) and m.channel_fc2.bias is not None
    assert m.spatial_reduce.conv.weight.shape == (16, 256, 1, 1)
    assert m.spatial_reduce.conv.bias is not None
    assert len(m.spatial_dilated) == 2
    for block in m.spatial_dilated:
        assert block.conv.weight.shape == (16, 16, 3, 3) and block.conv.bias is not None
        assert block.conv.dilation == (4, 4) and block.conv.padding == (4, 4)
    assert m.spatial_out.weight.shape == (1, 16, 1, 1) and m.spatial_out.bias is not None
    assert BAM(8).channel_fc1.out_features == 1
    with pytest.raises(ValueError, match='fusion'):
        BAM(64, fusion='max')


def test_bam_batch_of_one_in_training():
    """One sample: the channel branch's BN sees one value per channel and must not raise."""
    m = randomize_(BAM(32, reduction=4)).train()
    before = m.channel_norm.running_mean.clone()
    spatial_before = m.spatial_reduce.bn.running_mean.clone()
    x = torch.randn(1, 32, 5, 7, requires_grad=True)
    m(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    # a single vector carries no batch statistics: the running ones are used and kept
    torch.testing.assert_close(m.channel_norm.running_mean, before)
    # the spatial branch has 35 positions and trains as usual
    assert not torch.allclose(m.spatial_reduce.bn.running_mean, spatial_before)
