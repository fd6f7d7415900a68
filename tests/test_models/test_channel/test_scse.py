import pytest
import torch

from mmattn.models.channel import CSE, SCSE, SSE
from tests.helpers import assert_close, randomize_


def cse_reference(x, w1, b1, w2, b2):
    s = x.mean((2, 3))
    g = torch.sigmoid((s @ w1.t() + b1).relu() @ w2.t() + b2)
    return x * g[:, :, None, None]


def sse_reference(x, w, b):
    s = torch.sigmoid(torch.einsum('c,nchw->nhw', w, x) + b)
    return x * s[:, None]


@pytest.mark.parametrize('channels,reduction', [(16, 2), (12, 4), (1, 2)])
def test_cse_matches_formula(channels, reduction):
    m = randomize_(CSE(channels, reduction=reduction)).double().eval()
    x = torch.randn(2, channels, 5, 3, dtype=torch.float64)
    assert_close(m(x), cse_reference(x, m.fc1.weight, m.fc1.bias, m.fc2.weight, m.fc2.bias))


def test_sse_matches_formula():
    m = randomize_(SSE(16)).double().eval()
    x = torch.randn(2, 16, 5, 3, dtype=torch.float64)
    assert_close(m(x), sse_reference(x, m.conv.weight.flatten(), m.conv.bias))


@pytest.mark.parametrize('fusion', ['max', 'sum'])
def test_scse_matches_formula(fusion):
    m = randomize_(SCSE(16, fusion=fusion)).double().eval()
    x = torch.randn(2, 16, 4, 6, dtype=torch.float64)
    c = cse_reference(x, m.cSE.fc1.weight, m.cSE.fc1.bias, m.cSE.fc2.weight, m.cSE.fc2.bias)
    s = sse_reference(x, m.sSE.conv.weight.flatten(), m.sSE.conv.bias)
    assert_close(m(x), torch.max(c, s) if fusion == 'max' else c + s)


def test_scse_initial_state():
    m = SCSE(64)
    assert m.fusion == 'max'  # the authors' code; the paper's text adds
    assert m.cSE.reduction == 2
    assert m.cSE.fc1.weight.shape == (32, 64) and m.cSE.fc1.bias is not None
    assert m.cSE.fc2.weight.shape == (64, 32) and m.cSE.fc2.bias is not None
    assert m.sSE.conv.weight.shape == (1, 64, 1, 1) and m.sSE.conv.bias is not None
    # the authors' parameter names
    assert set(dict(m.named_parameters())) == {
        'cSE.fc1.weight', 'cSE.fc1.bias', 'cSE.fc2.weight', 'cSE.fc2.bias',
        'sSE.conv.weight', 'sSE.conv.bias'}
    assert CSE(1).fc1.out_features == 1
    assert sum(p.numel() for p in SSE(64).parameters()) == 65
    with pytest.raises(ValueError, match='fusion'):
        SCSE(64, fusion='add')
