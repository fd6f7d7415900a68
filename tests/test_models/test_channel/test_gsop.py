import pytest
import torch

from mmattn.models.channel import GSoP
from tests.helpers import assert_close, randomize_
from .reference import bn_eval


def gsop_reference(x, m, stride=1):
    """The authors' channel branch, with their covariance X I_hat X^T."""
    d = m.att_dim
    y = x.relu()[:, :, ::stride, ::stride]
    y = torch.einsum('dc,nchw->ndhw', m.dr_conv.weight.flatten(1), y)
    y = bn_eval(y + m.dr_conv.bias[None, :, None, None], m.dr_norm).relu()
    n, _, h, w = y.shape
    M = h * w
    f = y.reshape(n, d, M)
    i_hat = (torch.eye(M, dtype=x.dtype) - torch.ones(M, M, dtype=x.dtype) / M) / M
    cov = f @ i_hat @ f.transpose(1, 2)  # (N, d, d)
    cov = bn_eval(cov, m.row_norm)  # channel i of the BN is row i
    # row-wise conv: output o = 4 i + k sees row i only
    wr = m.row_conv.weight.reshape(d, 4, d)  # (row i, k, column j)
    z = torch.einsum('ikj,nij->nik', wr, cov).reshape(n, 4 * d) + m.row_conv.bias
    z = z @ m.fc.weight.flatten(1).t() + m.fc.bias
    return x * torch.sigmoid(z)[:, :, None, None]


@pytest.mark.parametrize('stride,hw', [(1, (5, 7)), (2, (6, 5)), (1, (1, 1))])
def test_gsop_matches_formula(stride, hw):
    m = randomize_(GSoP(24, att_dim=8, dr_stride=stride)).double().eval()
    x = torch.randn(2, 24, *hw, dtype=torch.float64)
    assert_close(m(x), gsop_reference(x, m, stride))


def test_gsop_initial_state():
    m = GSoP(256)
    assert m.att_dim == 128
    assert m.dr_conv.weight.shape == (128, 256, 1, 1) and m.dr_conv.bias is not None
    assert m.dr_conv.stride == (1, 1) and GSoP(256, dr_stride=2).dr_conv.stride == (2, 2)
    assert m.dr_norm.num_features == 128 and m.row_norm.num_features == 128
    assert m.row_conv.weight.shape == (512, 1, 128, 1) and m.row_conv.groups == 128
    assert m.row_conv.bias is not None
    assert m.fc.weight.shape == (256, 512, 1, 1) and m.fc.bias is not None
    expected = (256 * 128 + 128) + 2 * 128 + 2 * 128 + (512 * 128 + 512) + (512 * 256 + 256)
    assert sum(p.numel() for p in m.parameters()) == expected


def test_gsop_leaves_input_untouched_with_inplace_relu():
    m = randomize_(GSoP(16, att_dim=4, act_cfg=dict(type='ReLU', inplace=True))).eval()
    x = torch.randn(2, 16, 5, 5)
    x0 = x.clone()
    out = m(x)
    assert torch.equal(x, x0)
    m2 = randomize_(GSoP(16, att_dim=4)).eval()
    assert_close(out, m2(x0), rtol=1e-6, atol=1e-7)
