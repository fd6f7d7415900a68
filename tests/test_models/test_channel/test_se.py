import io

import pytest
import torch

from mmattn.models.channel import SE
from tests.helpers import assert_close, has_module, randomize_


def se_reference(x, w1, b1, w2, b2):
    """SE written out: GAP, FC, ReLU, FC, sigmoid, channel-wise product."""
    s = x.mean(dim=(2, 3))
    z = torch.relu(s @ w1.t() + b1)
    g = torch.sigmoid(z @ w2.t() + b2)
    return x * g[:, :, None, None]


@pytest.mark.parametrize('channels,reduction', [(64, 16), (32, 4), (8, 16)])
def test_se_matches_formula(channels, reduction):
    m = randomize_(SE(channels, reduction=reduction)).double().eval()
    x = torch.randn(3, channels, 5, 7, dtype=torch.float64)
    w1 = m.fc1.weight.flatten(1)
    w2 = m.fc2.weight.flatten(1)
    assert_close(m(x), se_reference(x, w1, m.fc1.bias, w2, m.fc2.bias))


def test_se_initial_state():
    m = SE(256)
    assert m.fc1.weight.shape == (16, 256, 1, 1) and m.fc1.bias is not None
    assert m.fc2.weight.shape == (256, 16, 1, 1) and m.fc2.bias is not None
    # the reduced width never reaches 0
    assert SE(8).fc1.out_channels == 1
    # SE-ResNet's block has exactly these parameters: 2 * C * C/r + C/r + C
    assert sum(p.numel() for p in m.parameters()) == 2 * 256 * 16 + 16 + 256


def test_se_gradients_match_formula():
    m = randomize_(SE(32, reduction=4)).double().train()
    x = torch.randn(2, 32, 6, 5, dtype=torch.float64, requires_grad=True)
    gy = torch.randn(2, 32, 6, 5, dtype=torch.float64)
    params = [m.fc1.weight, m.fc1.bias, m.fc2.weight, m.fc2.bias]
    got = torch.autograd.grad(m(x), [x] + params, gy)
    w1, w2 = m.fc1.weight.flatten(1), m.fc2.weight.flatten(1)
    ref = se_reference(x, w1, m.fc1.bias, w2, m.fc2.bias)
    expected = torch.autograd.grad(ref, [x] + params, gy)
    for a, b in zip(got, expected):
        assert_close(a, b)


def test_tracing_records_a_plain_mul():
    m = randomize_(SE(16)).train()
    x = torch.randn(2, 16, 5, 5, requires_grad=True)
    traced = torch.jit.trace(m, (x, ), check_trace=False)
    kinds = {n.kind() for n in traced.graph.nodes()}
    assert 'aten::mul' in kinds and 'prim::PythonOp' not in kinds


@pytest.mark.skipif(not (has_module('onnx') and has_module('onnxruntime')),
                    reason='needs onnx and onnxruntime')
def test_onnx_export_is_a_plain_mul():
    import onnx
    m = randomize_(SE(16)).eval()
    x = torch.randn(2, 16, 5, 5)
    buf = io.BytesIO()
    torch.onnx.export(m, (x, ), buf, opset_version=17, dynamo=False)
    graph = onnx.load_from_string(buf.getvalue()).graph
    ops_seen = [n.op_type for n in graph.node]
    assert ops_seen[-1] == 'Mul'
    assert all(n.domain in ('', 'ai.onnx') for n in graph.node)
