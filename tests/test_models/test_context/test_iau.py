import math

import pytest
import torch
import torch.nn.functional as F

from mmattn.models.context.iau import ChannelIAU, SpatialIAU
from tests.helpers import assert_close, randomize_
from tests.test_models.test_context.test_ann import check_layout_and_onnx


def bn_eval(x, bn):
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return (x - bn.running_mean[None, :, None, None]) * scale[None, :, None, None] \
        + bn.bias[None, :, None, None]


def conv_bn(x, seq):
    return bn_eval(F.conv2d(x, seq[0].weight, seq[0].bias), seq[1])


def ciau_reference(m, x):
    """The CIAU half of the authors' IAU.forward."""
    b, c, h, w = x.shape
    g = x.reshape(b, c, -1)
    f = torch.softmax(g @ g.transpose(1, 2), dim=-1)
    y = (f @ g).reshape(b, c, h, w)
    return conv_bn(y, m.W1) + x


def siau_reference(m, x):
    """The SIAU half of the authors' IAU.forward, with their Wcompute and Gconv (W_id * 1e8)."""
    b, c, h, w = x.shape
    u = x.reshape(b, c, -1).mean(2)
    a = torch.sigmoid(conv_bn(x, m.part_attn))
    parts = torch.bmm(a.reshape(b, -1, h * w), x.reshape(b, c, -1).transpose(1, 2))
    # reduce_dimension
    nodes = torch.cat((parts.transpose(1, 2).unsqueeze(3), u.reshape(b, c, 1, 1)), 2)
    nodes = F.conv2d(nodes, m.reduce.weight, m.reduce.bias).squeeze(3)
    u = nodes[:, :, -1]
    parts = nodes[:, :, :-1].transpose(1, 2)                       # (b, N, C')
    n, cr = parts.shape[1:]
    # Wcompute
    w1 = parts.unsqueeze(2)
    w_new = torch.abs(w1 - w1.transpose(1, 2)).transpose(1, 3)
    w_new = torch.cat((w_new, u.reshape(b, cr, 1, 1).expand_as(w_new)), 1)
    w_new = conv_bn(w_new, m.edge).transpose(1, 3).squeeze(3)
    w_new = w_new - torch.eye(n, dtype=x.dtype).expand_as(w_new) * 1e8
    w_new = torch.softmax(w_new, dim=2)
    # Gconv
    s = torch.cat([parts, torch.bmm(w_new, parts)], 2).reshape(-1, 2 * cr, 1, 1)
    s = torch.relu(conv_bn(s, m.node)).reshape(b, n, cr)
    y = torch.cat((s.mean(1), u), 1)
    return conv_bn(y.reshape(b, -1, 1, 1), m.W2) + x


@pytest.mark.parametrize('channels,hw', [(16, (9, 11)), (5, (1, 1)), (32, (4, 3))])
def test_ciau_matches_formula(channels, hw):
    m = randomize_(ChannelIAU(channels)).double().eval()
    x = torch.randn(2, channels, *hw, dtype=torch.float64)
    assert_close(m(x), ciau_reference(m, x))


@pytest.mark.parametrize('channels,parts,hw', [(16, 4, (9, 11)), (8, 2, (1, 1)),
                                               (32, 6, (4, 3))])
def test_siau_matches_formula(channels, parts, hw):
    m = randomize_(SpatialIAU(channels, num_parts=parts), scale=0.2).double().eval()
    x = torch.randn(2, channels, *hw, dtype=torch.float64)
    assert_close(m(x), siau_reference(m, x))


def test_siau_returns_part_maps():
    m = randomize_(SpatialIAU(8)).eval()
    x = torch.randn(2, 8, 6, 5)
    out, a = m(x, return_parts=True)
    assert_close(out, m(x))
    assert a.shape == (2, 4, 6, 5) and ((a > 0) & (a < 1)).all()


def test_iau_initial_state_is_identity():
    torch.manual_seed(0)
    x = torch.randn(2, 64, 7, 6)
    for m in (ChannelIAU(64), SpatialIAU(64)):
        bn = (m.W1 if isinstance(m, ChannelIAU) else m.W2)[1]
        assert bn.weight.abs().sum() == 0 and bn.bias.abs().sum() == 0
        m.init_weights()                # a backbone's init must not undo it
        assert bn.weight.abs().sum() == 0 and bn.bias.abs().sum() == 0
        assert_close(m.train()(x), x)
        assert_close(m.eval()(x), x)


def test_iau_widths_and_authors_conv_init():
    m = SpatialIAU(512)
    assert m.part_attn[0].weight.shape == (4, 512, 1, 1) and m.part_attn[0].bias is not None
    assert m.reduce.weight.shape == (256, 512, 1, 1)
    assert m.edge[0].weight.shape == (1, 512, 1, 1) and len(m.edge) == 2
    assert m.node[0].weight.shape == (256, 512, 1, 1) and isinstance(m.node[2], torch.nn.ReLU)
    assert m.W2[0].weight.shape == (512, 512, 1, 1)
    # weights ~ N(0, sqrt(2 / out)) as in the authors' __init__ loop
    for conv, out in ((m.W2[0], 512), (m.node[0], 256)):
        assert abs(conv.weight.std().item() / math.sqrt(2. / out) - 1) < 0.05
    assert abs(ChannelIAU(256).W1[0].weight.std().item() / math.sqrt(2. / 256) - 1) < 0.05
    # odd and tiny widths still build and run
    for c in (1, 3):
        assert SpatialIAU(c)(torch.randn(2, c, 3, 3)).shape == (2, c, 3, 3)
    with pytest.raises(ValueError, match='num_parts'):
        SpatialIAU(8, num_parts=1)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16], ids=str)
def test_iau_large_sums_survive_autocast(dtype):
    """X X^T and the part sums run over every position: 10 * N(0,1) on 64x64 gives energies
    near 4e5, past float16's range, so they are computed in float32."""
    torch.manual_seed(0)
    x = 10 * torch.randn(1, 8, 64, 64)
    for m in (randomize_(ChannelIAU(8)).eval(), randomize_(SpatialIAU(8)).eval()):
        with torch.autocast('cpu', dtype=dtype), torch.no_grad():
            out = m(x)
        assert torch.isfinite(out).all()
        expected = m(x)
        err = (out.float() - expected).abs().max() / expected.abs().max()
        assert err < 0.05, f'{type(m).__name__}: relative error {err:.3g} under {dtype}'


@pytest.mark.parametrize('cls', [ChannelIAU, SpatialIAU])
def test_iau_channels_last_and_onnx(cls):
    check_layout_and_onnx(cls)
