"""ONNX-safe adaptive average pooling, its bin matrices, and ANN's pyramid pooling."""
import pytest
import torch
import torch.nn.functional as F

from mmattn.models.layers import adaptive_avg_pool2d, pool_matrix, pyramid_pool
from tests.helpers import assert_close
from ..test_channel.reference import adaptive_bins_mean


@pytest.mark.parametrize('hw,out', [((12, 10), (7, 7)), ((5, 3), (4, 4)), ((1, 1), (2, 2)),
                                    ((9, 9), (3, 3)), ((13, 6), (1, 4))])
def test_adaptive_avg_pool2d(hw, out, monkeypatch):
    x = torch.randn(2, 3, *hw, dtype=torch.float64)
    expected = adaptive_bins_mean(x, *out)
    assert_close(adaptive_avg_pool2d(x, out), expected)
    # other traces (FLOP counters, TorchScript) keep PyTorch's op: they see what the model runs
    traced = torch.jit.trace(lambda t: adaptive_avg_pool2d(t, out), (x, ), check_trace=False)
    assert 'aten::adaptive_avg_pool2d' in {n.kind() for n in traced.graph.nodes()}
    assert_close(traced(x), expected)
    # the ONNX export's form (averaging matrices where the sizes do not divide): same bins
    monkeypatch.setattr(torch.onnx, 'is_in_onnx_export', lambda: True)
    exported = torch.jit.trace(lambda t: adaptive_avg_pool2d(t, out), (x, ), check_trace=False)
    assert_close(exported(x), expected)
    if hw[0] % out[0] or hw[1] % out[1]:
        kinds = {n.kind() for n in exported.graph.nodes()}
        assert 'aten::adaptive_avg_pool2d' not in kinds
    monkeypatch.undo()
    assert_close(adaptive_avg_pool2d(x, out[0]), adaptive_bins_mean(x, out[0], out[0]))
    assert_close(F.adaptive_avg_pool2d(x, out), expected)


def test_same_size_is_the_identity():
    x = torch.randn(2, 3, 4, 5)
    assert adaptive_avg_pool2d(x, (4, 5)) is x


@pytest.mark.parametrize('hw', [(1, 1), (1, 5), (7, 6), (10, 12), (13, 9), (56, 56)])
@pytest.mark.parametrize('out', [(1, 1), (3, 3), (6, 6), (8, 8), (16, 8)])
def test_pool_matrices_match_adaptive_avg_pool(hw, out):
    """The bins of ANN's pyramid and RGA's grid, upsampling ones included."""
    x = torch.randn(2, 3, *hw, dtype=torch.float64)
    ph, pw = pool_matrix(hw[0], out[0], x), pool_matrix(hw[1], out[1], x)
    assert_close(torch.matmul(torch.matmul(ph, x), pw.t()), F.adaptive_avg_pool2d(x, out))


def test_pyramid_pool():
    x = torch.randn(2, 3, 13, 9, dtype=torch.float64)
    out = pyramid_pool(x, (1, 3, 6, 8))
    assert out.shape == (2, 3, 1 + 9 + 36 + 64)
    expected = torch.cat([F.adaptive_avg_pool2d(x, s).flatten(2) for s in (1, 3, 6, 8)], 2)
    assert_close(out, expected)
