"""The conformance suite: every registered attention module, generated from the registry.

A module added to the registry is picked up here without any edit. Each module runs with its
default arguments and with every entry of its ``variants`` (the authors' and the paper's forms).

KNOWN_LIMITS is the one place that lists what a module cannot do, and why; each entry turns
the matching check into a visible skip with that reason.
"""
import io

import pytest
import torch

from mmattn.models import attention_classes
from tests.helpers import has_module, randomize_, requires_mmdet, requires_mmseg

# (module name, check) -> reason.
KNOWN_LIMITS = {
}

CHANNELS = [1, 2, 3, 16, 64, 256, 2048]
SPATIAL = [(1, 1), (1, 5), (3, 2), (7, 7), (14, 9), (56, 56)]


def _cases():
    for name, cls in attention_classes().items():
        yield pytest.param(name, {}, id=name)
        for vname, kwargs in getattr(cls, 'variants', {}).items():
            yield pytest.param(name, kwargs, id=f'{name}-{vname}')


CASES = list(_cases())


def _limit(name, check):
    reason = KNOWN_LIMITS.get((name, check))
    cls = attention_classes()[name]
    if reason is None and not cls.is_plugin and check in ('plugin_mmdet', 'plugin_mmseg'):
        reason = 'not a plugin: a head or fusion block whose output differs from its input'
    if reason:
        pytest.skip(f'KNOWN_LIMITS: {name}: {reason}')


def _build(name, channels, kwargs):
    return attention_classes()[name](in_channels=channels, **kwargs)


def _inputs(name, channels, shape, **kw):
    return attention_classes()[name].example_inputs(channels, shape, **kw)


def _check_output(name, module, inputs, out):
    assert isinstance(out, torch.Tensor), f'{name} returned {type(out)}'
    assert torch.isfinite(out).all(), f'{name} produced non-finite values'
    if module.is_plugin:
        assert out.shape == inputs[0].shape, f'{name}: {tuple(out.shape)} != input shape'


@pytest.mark.parametrize('channels', CHANNELS)
@pytest.mark.parametrize('name,kwargs', CASES)
def test_channel_counts(name, kwargs, channels):
    _limit(name, f'channels={channels}')
    torch.manual_seed(0)
    m = randomize_(_build(name, channels, kwargs)).eval()
    inputs = _inputs(name, channels, (2, channels, 7, 6))
    with torch.no_grad():
        _check_output(name, m, inputs, m(*inputs))


@pytest.mark.parametrize('hw', SPATIAL, ids=lambda hw: f'{hw[0]}x{hw[1]}')
@pytest.mark.parametrize('name,kwargs', CASES)
def test_spatial_sizes(name, kwargs, hw):
    _limit(name, f'spatial={hw[0]}x{hw[1]}')
    torch.manual_seed(0)
    m = randomize_(_build(name, 32, kwargs)).eval()
    inputs = _inputs(name, 32, (2, 32) + hw)
    with torch.no_grad():
        _check_output(name, m, inputs, m(*inputs))


@pytest.mark.parametrize('hw', [(1, 1), (5, 4)], ids=lambda hw: f'{hw[0]}x{hw[1]}')
@pytest.mark.parametrize('name,kwargs', CASES)
def test_batch_one_training(name, kwargs, hw):
    """Batch size 1 in training mode: norms after global pooling must not crash a run."""
    _limit(name, 'batch1')
    m = _build(name, 64, kwargs).train()
    inputs = _inputs(name, 64, (1, 64) + hw, requires_grad=True)
    out = m(*inputs)
    _check_output(name, m, inputs, out)
    out.float().sum().backward()
    assert torch.isfinite(inputs[0].grad).all()


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize('name,kwargs', CASES)
def test_autocast(name, kwargs, dtype):
    _limit(name, f'autocast_{dtype}')
    torch.manual_seed(0)
    m = randomize_(_build(name, 64, kwargs)).train()
    inputs = _inputs(name, 64, (2, 64, 12, 10), requires_grad=True)
    with torch.autocast('cpu', dtype=dtype):
        out = m(*inputs)
    assert torch.isfinite(out.float()).all(), f'{name} under {dtype} autocast is not finite'
    out.float().sum().backward()


@pytest.mark.parametrize('name,kwargs', CASES)
def test_channels_last(name, kwargs):
    _limit(name, 'channels_last')
    torch.manual_seed(0)
    m = randomize_(_build(name, 48, kwargs)).eval()
    inputs = _inputs(name, 48, (2, 48, 9, 11))
    cl = tuple(t.contiguous(memory_format=torch.channels_last) for t in inputs)
    with torch.no_grad():
        torch.testing.assert_close(m(*cl), m(*inputs), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('name,kwargs', CASES)
def test_gradients_reach_every_parameter(name, kwargs):
    _limit(name, 'gradients')
    torch.manual_seed(0)
    m = randomize_(_build(name, 32, kwargs)).train()
    inputs = _inputs(name, 32, (2, 32, 8, 7), requires_grad=True)
    (m(*inputs) * torch.randn(1)).sum().backward()
    missing = [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f'{name}: no gradient reaches {missing}'
    for n, p in m.named_parameters():
        assert torch.isfinite(p.grad).all(), f'{name}: gradient of {n} is not finite'
    assert inputs[0].grad.abs().sum() > 0


@pytest.mark.parametrize('name,kwargs', CASES)
def test_gradients_match_finite_differences(name, kwargs):
    """The gradients of the inputs and of every parameter against finite differences, in
    float64: hand-written backward passes (fused gates, criss-cross, Gram products) must be
    the derivative of what the forward computes. Evaluation mode, so that dropout is off and
    batch norms are fixed functions."""
    _limit(name, 'gradcheck')
    from torch.func import functional_call
    torch.manual_seed(0)
    m = randomize_(_build(name, 16, kwargs)).double().eval()
    inputs = _inputs(name, 16, (2, 16, 5, 4), dtype=torch.float64, requires_grad=True)
    names = [n for n, p in m.named_parameters() if p.requires_grad]
    params = tuple(p.detach().clone().requires_grad_() for n, p in m.named_parameters()
                   if p.requires_grad)

    def f(*args):
        return functional_call(m, dict(zip(names, args[len(inputs):])), args[:len(inputs)])

    assert torch.autograd.gradcheck(f, tuple(inputs) + params, fast_mode=True)


@pytest.mark.skipif(not (has_module('onnx') and has_module('onnxruntime')),
                    reason='needs onnx and onnxruntime')
@pytest.mark.parametrize('name,kwargs', CASES)
def test_onnx_export(name, kwargs):
    _limit(name, 'onnx')
    import onnxruntime as ort
    torch.manual_seed(0)
    m = randomize_(_build(name, 32, kwargs)).eval()
    inputs = _inputs(name, 32, (2, 32, 12, 10))
    buf = io.BytesIO()
    torch.onnx.export(m, inputs, buf, opset_version=17, dynamo=False,
                      input_names=[f'in{i}' for i in range(len(inputs))])
    sess = ort.InferenceSession(buf.getvalue(), providers=['CPUExecutionProvider'])
    (got, ) = sess.run(None, {f'in{i}': t.numpy() for i, t in enumerate(inputs)})[:1]
    with torch.no_grad():
        expected = m(*inputs)
    torch.testing.assert_close(torch.from_numpy(got), expected, rtol=1e-4, atol=1e-4)


def _plugin_cfg(name, kwargs):
    return [dict(cfg=dict(type=f'mmattn.{name}', **kwargs), stages=(True, True, True, True),
                 position='after_conv3')]


@requires_mmdet
@pytest.mark.parametrize('name,kwargs', CASES)
def test_plugin_mmdet_resnet50(name, kwargs):
    _limit(name, 'plugin_mmdet')
    from mmdet.models.backbones import ResNet
    net = ResNet(depth=50, plugins=_plugin_cfg(name, kwargs))
    net.train()  # mmdet's ResNet.train() returns None
    blocks = [b for layer in (net.layer1, net.layer2, net.layer3, net.layer4) for b in layer]
    assert all(any(isinstance(c, attention_classes()[name]) for c in b.children())
               for b in blocks), 'the plugin is missing from some block'
    outs = net(torch.randn(2, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [256, 512, 1024, 2048]


@requires_mmseg
@pytest.mark.parametrize('name,kwargs', CASES)
def test_plugin_mmseg_resnetv1c(name, kwargs):
    _limit(name, 'plugin_mmseg')
    from mmseg.models.backbones import ResNetV1c
    net = ResNetV1c(depth=50, plugins=_plugin_cfg(name, kwargs), strides=(1, 2, 1, 1),
                    dilations=(1, 1, 2, 4))
    net.train()
    outs = net(torch.randn(2, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [256, 512, 1024, 2048]
