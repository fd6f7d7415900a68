import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from mmattn.models.context.afnb import AFNBlock
from mmattn.models.context.apnb import APNBlock
from tests.helpers import assert_close, has_module, randomize_


# -- layout and export with well-conditioned weights ------------------------------------------
@torch.no_grad()
def well_conditioned_(module, seed=0):
    """Random weights with std 0.5 / sqrt(fan-in), so activations stay O(1) through the block.

    The shared suite's ``randomize_`` draws every weight with std 0.5: through the 256- and
    512-wide layers of these blocks activations grow ~10x a layer (outputs of 100-1000), the
    softmax becomes nearly an argmax, and float32 rounding flips its near-ties: both memory
    layouts then differ from a float64 run by the same amount, beyond the suite's absolute
    tolerance. Here the layout and the exported graph are checked where the function is
    well-conditioned.
    """
    gen = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        std = 0.5 / math.sqrt(p[0].numel()) if p.dim() > 1 else 0.5
        p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype) * std)
    for m in module.modules():
        if isinstance(m, _BatchNorm) and m.track_running_stats:
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return module


def check_layout_and_onnx(cls, channels=48, **kwargs):
    """channels_last gives the contiguous result; the ONNX graph gives it in onnxruntime."""
    torch.manual_seed(0)
    m = well_conditioned_(cls(in_channels=channels, **kwargs)).eval()
    inputs = cls.example_inputs(channels, (2, channels, 12, 10))
    with torch.no_grad():
        expected = m(*inputs)
        cl = tuple(t.contiguous(memory_format=torch.channels_last) for t in inputs)
        torch.testing.assert_close(m(*cl), expected, rtol=1e-4, atol=1e-5)
    if not (has_module('onnx') and has_module('onnxruntime')):
        return
    import onnxruntime as ort
    buf = io.BytesIO()
    names = [f'in{i}' for i in range(len(inputs))]
    torch.onnx.export(m, inputs, buf, opset_version=17, dynamo=False, input_names=names)
    sess = ort.InferenceSession(buf.getvalue(), providers=['CPUExecutionProvider'])
    got = sess.run(None, {n: t.numpy() for n, t in zip(names, inputs)})[0]
    torch.testing.assert_close(torch.from_numpy(got), expected, rtol=1e-4, atol=1e-5)


# -- plain formulas -------------------------------------------------------------------------
def conv1x1(x, weight, bias=None):
    y = torch.einsum('oc,nchw->nohw', weight.flatten(1), x)
    return y if bias is None else y + bias[None, :, None, None]


def bn_eval(x, bn):
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return (x - bn.running_mean[None, :, None, None]) * scale[None, :, None, None] \
        + bn.bias[None, :, None, None]


def anchors(x, sizes=(1, 3, 6, 8)):
    """ANN's PSP sampling, with PyTorch's own adaptive pooling."""
    return torch.cat([F.adaptive_avg_pool2d(x, s).flatten(2) for s in sizes], dim=2)


def attention(query_map, key_map, value_map, key_channels):
    """softmax over the anchors of query^T key / sqrt(d), times the values (the ANN formula)."""
    n, _, h, w = query_map.shape
    q = query_map.flatten(2)                       # N, K, HW
    k = anchors(key_map)                           # N, K, 110
    v = anchors(value_map)                         # N, V, 110
    sim = torch.softmax(q.transpose(1, 2) @ k * key_channels**-0.5, dim=-1)
    return (sim @ v.transpose(1, 2)).transpose(1, 2).reshape(n, -1, h, w)


def apnb_reference(m, x):
    kp, bt = m.key_project, m.bottleneck
    key = torch.relu(bn_eval(conv1x1(x, kp.conv.weight, kp.conv.bias), kp.bn))
    value = conv1x1(x, m.value_project.weight, m.value_project.bias)
    ctx = attention(key, key, value, m.key_channels)
    ctx = conv1x1(ctx, m.out_project.weight, m.out_project.bias)
    fused = conv1x1(torch.cat([ctx, x], 1), bt.conv.weight, bt.conv.bias)
    return torch.relu(bn_eval(fused, bt.bn))


def afnb_reference(m, low, high):
    qp, kp, bt = m.query_project, m.key_project, m.bottleneck
    query = torch.relu(bn_eval(conv1x1(high, qp.conv.weight, qp.conv.bias), qp.bn))
    key = torch.relu(bn_eval(conv1x1(low, kp.conv.weight, kp.conv.bias), kp.bn))
    value = conv1x1(low, m.value_project.weight, m.value_project.bias)
    ctx = attention(query, key, value, m.key_channels)
    ctx = conv1x1(ctx, m.out_project.weight, m.out_project.bias)
    return bn_eval(conv1x1(torch.cat([ctx, high], 1), bt.conv.weight, bt.conv.bias), bt.bn)


# -- APNB -----------------------------------------------------------------------------------
@pytest.mark.parametrize('channels,key,value,hw,bias', [
    (16, 8, 12, (9, 11), True), (24, 32, 16, (5, 4), False), (8, 256, 256, (1, 3), True)])
def test_apnb_matches_formula(channels, key, value, hw, bias):
    m = randomize_(APNBlock(channels, key_channels=key, value_channels=value,
                            norm_conv_bias=bias)).double().eval()
    x = torch.randn(2, channels, *hw, dtype=torch.float64)
    assert_close(m(x), apnb_reference(m, x))


def test_apnb_initial_state():
    c = 64
    m = APNBlock(c)
    assert m.key_project is m.query_project
    assert m.key_project.conv.weight.shape == (256, c, 1, 1)
    assert m.value_project.weight.shape == (256, c, 1, 1)
    assert m.out_project.weight.shape == (c, 256, 1, 1)
    assert m.bottleneck.conv.weight.shape == (c, 2 * c, 1, 1)
    assert m.bottleneck.with_activation and m.key_project.with_activation
    assert isinstance(m.dropout, torch.nn.Dropout2d) and m.dropout.p == 0.05
    assert sum(s * s for s in m.pool_sizes) == 110
    # the output conv starts at zero, also after a backbone's init_weights
    m.init_weights()
    assert m.out_project.weight.abs().sum() == 0 and m.out_project.bias.abs().sum() == 0
    # so the block starts as ReLU(BN(conv(cat[0, x])))
    m.eval()
    x = torch.randn(2, c, 6, 5)
    bt = m.bottleneck
    expected = torch.relu(bn_eval(conv1x1(torch.cat([torch.zeros_like(x), x], 1),
                                          bt.conv.weight, bt.conv.bias), bt.bn))
    assert_close(m(x), expected, rtol=1e-5, atol=1e-6)
    # the authors' parameters: key conv+BN, value conv, W, fusion conv+BN (convs with bias)
    authors = (c * 256 + 256 + 2 * 256) + (c * 256 + 256) + (256 * c + c) \
        + (2 * c * c + c + 2 * c)
    assert sum(p.numel() for p in m.parameters()) == authors
    # mmseg's layout: no bias before a BN
    assert sum(p.numel() for p in APNBlock(c, norm_conv_bias=False).parameters()) \
        == authors - 256 - c


def test_apnb_state_dict_has_mmseg_names():
    keys = set(APNBlock(8, norm_conv_bias=False).state_dict())
    for name in ('key_project', 'query_project'):
        assert {f'{name}.conv.weight', f'{name}.bn.weight', f'{name}.bn.running_var'} <= keys
    assert {'value_project.weight', 'value_project.bias', 'out_project.weight',
            'out_project.bias', 'bottleneck.conv.weight', 'bottleneck.bn.bias'} <= keys


@pytest.mark.parametrize('cls', [APNBlock, AFNBlock])
def test_ann_channels_last_and_onnx(cls):
    check_layout_and_onnx(cls)


def test_apnb_out_channels():
    m = randomize_(APNBlock(16, key_channels=8, value_channels=8, out_channels=24)).eval()
    assert m(torch.randn(1, 16, 5, 5)).shape == (1, 24, 5, 5)


# -- AFNB -----------------------------------------------------------------------------------
@pytest.mark.parametrize('high_c,low_c,low_hw,bias', [
    (16, 8, (9, 11), True), (12, 20, (18, 22), False), (6, 3, (2, 1), True)])
def test_afnb_matches_formula(high_c, low_c, low_hw, bias):
    m = randomize_(AFNBlock(high_c, low_in_channels=low_c, key_channels=10, value_channels=14,
                            norm_conv_bias=bias)).double().eval()
    low = torch.randn(2, low_c, *low_hw, dtype=torch.float64)
    high = torch.randn(2, high_c, 9, 11, dtype=torch.float64)
    assert_close(m(low, high), afnb_reference(m, low, high))


def test_afnb_initial_state():
    m = AFNBlock(2048)
    assert not m.is_plugin
    assert m.low_in_channels == 1024 and m.out_channels == 2048   # the authors' AFNB(1024, 2048)
    assert m.query_project.conv.weight.shape == (256, 2048, 1, 1)
    assert m.key_project.conv.weight.shape == (256, 1024, 1, 1)
    assert m.value_project.weight.shape == (256, 1024, 1, 1)
    assert m.out_project.weight.shape == (2048, 256, 1, 1)
    assert m.bottleneck.conv.weight.shape == (2048, 4096, 1, 1)
    assert m.bottleneck.with_norm and not m.bottleneck.with_activation   # BN, no ReLU
    m.init_weights()
    assert m.out_project.weight.abs().sum() == 0 and m.out_project.bias.abs().sum() == 0
    assert AFNBlock(1).low_in_channels == 1
    low, high = AFNBlock.example_inputs(64, (2, 64, 5, 6))
    assert low.shape == (2, 32, 5, 6) and high.shape == (2, 64, 5, 6)


def test_afnb_rejects_wrong_inputs():
    m = AFNBlock(16, low_in_channels=8)
    with pytest.raises(ValueError, match='low_feats with 8 channels'):
        m(torch.randn(1, 16, 4, 4), torch.randn(1, 16, 4, 4))
    with pytest.raises(ValueError, match='same batch'):
        m(torch.randn(2, 8, 4, 4), torch.randn(1, 16, 4, 4))


@pytest.mark.parametrize('cls,kwargs,convmodules', [
    (APNBlock, dict(), ('key_project', 'bottleneck')),
    (AFNBlock, dict(low_in_channels=6), ('query_project', 'key_project', 'bottleneck')),
])
def test_conv_cfg_builds_the_convmodule_convs(cls, kwargs, convmodules):
    """conv_cfg reaches the convs that have a norm (mmseg's ConvModules); the value and output
    projections are plain 1x1 convs, as in mmseg's ANNHead."""
    from mmcv.cnn.bricks.conv_ws import ConvWS2d
    m = cls(12, key_channels=4, value_channels=5, conv_cfg=dict(type='ConvWS'), **kwargs)
    plain = cls(12, key_channels=4, value_channels=5, **kwargs)
    for name in convmodules:
        assert type(getattr(m, name).conv) is ConvWS2d, name
        assert type(getattr(plain, name).conv) is torch.nn.Conv2d, name
    for name in ('value_project', 'out_project'):
        assert type(getattr(m, name)) is torch.nn.Conv2d, name
    # same parameters either way: checkpoints carry over
    assert [(k, v.shape) for k, v in m.state_dict().items()] == \
        [(k, v.shape) for k, v in plain.state_dict().items()]
    randomize_(m, scale=0.3)
    plain.load_state_dict(m.state_dict())
    m.eval()
    plain.eval()
    x = [torch.randn(2, 6, 5, 4)] if cls is AFNBlock else []
    x.append(torch.randn(2, 12, 5, 4))
    with torch.no_grad():
        y, y_plain = m(*x), plain(*x)
    assert y.shape == y_plain.shape
    assert (y - y_plain).abs().max() > 1e-3 * y_plain.abs().max()
