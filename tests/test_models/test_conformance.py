"""The conformance suite: every registered attention module, generated from the registry.

A module added to the registry is picked up here without any edit. Each module runs with its
default arguments and with every entry of its ``variants`` (the authors' and the paper's forms).

Conv-like layers registered in mmattn (those that declare ``includes_norm_act``, the conv slot's
protocol: ``mmattn.SKConv``, ``mmattn.AttnConv2d``) take the place of a block's 3x3 conv, so
their output follows their ``out_channels`` and stride: the ``conv_*`` checks build them with a
conv's arguments and run them in the conv slots of mmdet's and mmseg's ResNets
(``mmattn/models/backbones/conv_slot.py``).

Each check is a function of a module class and its keyword arguments (``check_*``). The tests
below run every check on every registered class and variant; :func:`run_conformance` runs them
all on one class (``tests/test_docs_guide.py`` runs the adding-a-module guide's example
through it).

KNOWN_LIMITS is the one place that lists what a module cannot do, and why; each entry turns
the matching check into a visible skip with that reason.
"""
import io
from typing import List, Optional, Type

import pytest
import torch

from mmattn.models import BaseAttention, attention_classes
from tests.helpers import has_module, randomize_, requires_mmdet, requires_mmseg

# (module name, check) -> reason.
KNOWN_LIMITS = {
}

CHANNELS = [1, 2, 3, 16, 64, 256, 2048]
SPATIAL = [(1, 1), (1, 5), (3, 2), (7, 7), (14, 9), (56, 56)]
BATCH1_SPATIAL = [(1, 1), (5, 4)]
AUTOCAST_DTYPES = [torch.float16, torch.bfloat16]
HAS_ONNX = has_module('onnx') and has_module('onnxruntime')


def limit_reason(cls: Type[BaseAttention], check: str) -> Optional[str]:
    """Why ``cls`` is exempt from ``check`` (a KNOWN_LIMITS key's second part), or None."""
    reason = KNOWN_LIMITS.get((cls.__name__, check))
    if reason is None and not cls.is_plugin and check in ('plugin_mmdet', 'plugin_mmseg'):
        reason = ('a conv-like layer, run in the backbones\' conv slots by the conv_* checks'
                  if is_conv_layer(cls) else
                  'not a plugin: a head or fusion block whose output differs from its input')
    return reason


def is_conv_layer(cls) -> bool:
    """A conv-like layer for the backbones' conv slot: it declares ``includes_norm_act``."""
    return isinstance(cls, type) and hasattr(cls, 'includes_norm_act')


def _check_output(cls, module, inputs, out):
    name = cls.__name__
    assert isinstance(out, torch.Tensor), f'{name} returned {type(out)}'
    assert torch.isfinite(out).all(), f'{name} produced non-finite values'
    if module.is_plugin:
        assert out.shape == inputs[0].shape, f'{name}: {tuple(out.shape)} != input shape'


# -- the checks ---------------------------------------------------------------------------------
def check_channel_counts(cls, kwargs, channels):
    torch.manual_seed(0)
    m = randomize_(cls(in_channels=channels, **kwargs)).eval()
    inputs = cls.example_inputs(channels, (2, channels, 7, 6))
    with torch.no_grad():
        _check_output(cls, m, inputs, m(*inputs))


def check_spatial_sizes(cls, kwargs, hw):
    torch.manual_seed(0)
    m = randomize_(cls(in_channels=32, **kwargs)).eval()
    inputs = cls.example_inputs(32, (2, 32) + hw)
    with torch.no_grad():
        _check_output(cls, m, inputs, m(*inputs))


def check_batch_one_training(cls, kwargs, hw):
    """Batch size 1 in training mode: norms after global pooling must not crash a run."""
    m = cls(in_channels=64, **kwargs).train()
    inputs = cls.example_inputs(64, (1, 64) + hw, requires_grad=True)
    out = m(*inputs)
    _check_output(cls, m, inputs, out)
    out.float().sum().backward()
    assert torch.isfinite(inputs[0].grad).all()


def check_autocast(cls, kwargs, dtype):
    torch.manual_seed(0)
    m = randomize_(cls(in_channels=64, **kwargs)).train()
    inputs = cls.example_inputs(64, (2, 64, 12, 10), requires_grad=True)
    with torch.autocast('cpu', dtype=dtype):
        out = m(*inputs)
    assert torch.isfinite(out.float()).all(), \
        f'{cls.__name__} under {dtype} autocast is not finite'
    out.float().sum().backward()


def check_channels_last(cls, kwargs):
    torch.manual_seed(0)
    m = randomize_(cls(in_channels=48, **kwargs)).eval()
    inputs = cls.example_inputs(48, (2, 48, 9, 11))
    cl = tuple(t.contiguous(memory_format=torch.channels_last) for t in inputs)
    with torch.no_grad():
        torch.testing.assert_close(m(*cl), m(*inputs), rtol=1e-4, atol=1e-5)


def check_gradients_reach_every_parameter(cls, kwargs):
    name = cls.__name__
    torch.manual_seed(0)
    m = randomize_(cls(in_channels=32, **kwargs)).train()
    inputs = cls.example_inputs(32, (2, 32, 8, 7), requires_grad=True)
    (m(*inputs) * torch.randn(1)).sum().backward()
    missing = [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f'{name}: no gradient reaches {missing}'
    for n, p in m.named_parameters():
        assert torch.isfinite(p.grad).all(), f'{name}: gradient of {n} is not finite'
    assert inputs[0].grad.abs().sum() > 0


def check_gradients_match_finite_differences(cls, kwargs):
    """The gradients of the inputs and of every parameter against finite differences, in
    float64: hand-written backward passes (fused gates, criss-cross, Gram products) must be
    the derivative of what the forward computes. Evaluation mode, so that dropout is off and
    batch norms are fixed functions."""
    from torch.func import functional_call
    torch.manual_seed(0)
    m = randomize_(cls(in_channels=16, **kwargs)).double().eval()
    inputs = cls.example_inputs(16, (2, 16, 5, 4), dtype=torch.float64, requires_grad=True)
    names = [n for n, p in m.named_parameters() if p.requires_grad]
    params = tuple(p.detach().clone().requires_grad_() for n, p in m.named_parameters()
                   if p.requires_grad)

    def f(*args):
        return functional_call(m, dict(zip(names, args[len(inputs):])), args[:len(inputs)])

    assert torch.autograd.gradcheck(f, tuple(inputs) + params, fast_mode=True)


def check_onnx_export(cls, kwargs):
    import onnxruntime as ort
    torch.manual_seed(0)
    m = randomize_(cls(in_channels=32, **kwargs)).eval()
    inputs = cls.example_inputs(32, (2, 32, 12, 10))
    buf = io.BytesIO()
    torch.onnx.export(m, inputs, buf, opset_version=17, dynamo=False,
                      input_names=[f'in{i}' for i in range(len(inputs))])
    sess = ort.InferenceSession(buf.getvalue(), providers=['CPUExecutionProvider'])
    (got, ) = sess.run(None, {f'in{i}': t.numpy() for i, t in enumerate(inputs)})[:1]
    with torch.no_grad():
        expected = m(*inputs)
    torch.testing.assert_close(torch.from_numpy(got), expected, rtol=1e-4, atol=1e-4)


def _plugin_cfg(cls, kwargs):
    return [dict(cfg=dict(type=f'mmattn.{cls.__name__}', **kwargs),
                 stages=(True, True, True, True), position='after_conv3')]


def check_plugin_mmdet_resnet50(cls, kwargs):
    from mmdet.models.backbones import ResNet
    net = ResNet(depth=50, plugins=_plugin_cfg(cls, kwargs))
    net.train()  # mmdet's ResNet.train() returns None
    blocks = [b for layer in (net.layer1, net.layer2, net.layer3, net.layer4) for b in layer]
    assert all(any(isinstance(c, cls) for c in b.children()) for b in blocks), \
        'the plugin is missing from some block'
    outs = net(torch.randn(2, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [256, 512, 1024, 2048]


def check_plugin_mmseg_resnetv1c(cls, kwargs):
    from mmseg.models.backbones import ResNetV1c
    net = ResNetV1c(depth=50, plugins=_plugin_cfg(cls, kwargs), strides=(1, 2, 1, 1),
                    dilations=(1, 1, 2, 4))
    net.train()
    outs = net(torch.randn(2, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [256, 512, 1024, 2048]


# every check: its KNOWN_LIMITS name, the function, the arguments it runs with, and whether
# what it needs is installed
CHECKS = [
    *[(f'channels={c}', check_channel_counts, dict(channels=c), True) for c in CHANNELS],
    *[(f'spatial={h}x{w}', check_spatial_sizes, dict(hw=(h, w)), True) for h, w in SPATIAL],
    *[('batch1', check_batch_one_training, dict(hw=hw), True) for hw in BATCH1_SPATIAL],
    *[(f'autocast_{d}', check_autocast, dict(dtype=d), True) for d in AUTOCAST_DTYPES],
    ('channels_last', check_channels_last, {}, True),
    ('gradients', check_gradients_reach_every_parameter, {}, True),
    ('gradcheck', check_gradients_match_finite_differences, {}, True),
    ('onnx', check_onnx_export, {}, HAS_ONNX),
    ('plugin_mmdet', check_plugin_mmdet_resnet50, {}, has_module('mmdet')),
    ('plugin_mmseg', check_plugin_mmseg_resnetv1c, {}, has_module('mmseg')),
]


def run_conformance(cls) -> List[str]:
    """Every check on ``cls``, with its default arguments and each of its ``variants``, as the
    tests below run them on the registered modules (a conv-like layer: the ``conv_*`` checks
    too). Returns what was not run, and why (a KNOWN_LIMITS entry, a package that is not
    installed)."""
    not_run = []
    attention = isinstance(cls, type) and issubclass(cls, BaseAttention)
    for vname, kwargs in [('default', {})] + list(cls.variants.items()) if attention else []:
        for check, fn, args, available in CHECKS:
            reason = limit_reason(cls, check) or (None if available else 'not installed')
            if reason:
                not_run.append(f'{cls.__name__}[{vname}] {check}: {reason}')
                continue
            fn(cls, kwargs, **args)
    if is_conv_layer(cls):
        for vname, kwargs in conv_layer_forms(cls):
            for check, fn, args, available in CONV_CHECKS:
                if not available:
                    not_run.append(f'{cls.__name__}[{vname}] {check}: not installed')
                    continue
                fn(cls, kwargs, **args)
    return not_run


# -- every registered module and variant ------------------------------------------------------
def _cases():
    for name, cls in attention_classes().items():
        yield pytest.param(name, {}, id=name)
        for vname, kwargs in getattr(cls, 'variants', {}).items():
            yield pytest.param(name, kwargs, id=f'{name}-{vname}')


CASES = list(_cases())


def _cls(name, check):
    """The registered class, or a skip naming its KNOWN_LIMITS reason for ``check``."""
    cls = attention_classes()[name]
    reason = limit_reason(cls, check)
    if reason:
        pytest.skip(f'KNOWN_LIMITS: {name}: {reason}')
    return cls


@pytest.mark.parametrize('channels', CHANNELS)
@pytest.mark.parametrize('name,kwargs', CASES)
def test_channel_counts(name, kwargs, channels):
    check_channel_counts(_cls(name, f'channels={channels}'), kwargs, channels)


@pytest.mark.parametrize('hw', SPATIAL, ids=lambda hw: f'{hw[0]}x{hw[1]}')
@pytest.mark.parametrize('name,kwargs', CASES)
def test_spatial_sizes(name, kwargs, hw):
    check_spatial_sizes(_cls(name, f'spatial={hw[0]}x{hw[1]}'), kwargs, hw)


@pytest.mark.parametrize('hw', BATCH1_SPATIAL, ids=lambda hw: f'{hw[0]}x{hw[1]}')
@pytest.mark.parametrize('name,kwargs', CASES)
def test_batch_one_training(name, kwargs, hw):
    check_batch_one_training(_cls(name, 'batch1'), kwargs, hw)


@pytest.mark.parametrize('dtype', AUTOCAST_DTYPES, ids=str)
@pytest.mark.parametrize('name,kwargs', CASES)
def test_autocast(name, kwargs, dtype):
    check_autocast(_cls(name, f'autocast_{dtype}'), kwargs, dtype)


@pytest.mark.parametrize('name,kwargs', CASES)
def test_channels_last(name, kwargs):
    check_channels_last(_cls(name, 'channels_last'), kwargs)


@pytest.mark.parametrize('name,kwargs', CASES)
def test_gradients_reach_every_parameter(name, kwargs):
    check_gradients_reach_every_parameter(_cls(name, 'gradients'), kwargs)


@pytest.mark.parametrize('name,kwargs', CASES)
def test_gradients_match_finite_differences(name, kwargs):
    check_gradients_match_finite_differences(_cls(name, 'gradcheck'), kwargs)


@pytest.mark.skipif(not HAS_ONNX, reason='needs onnx and onnxruntime')
@pytest.mark.parametrize('name,kwargs', CASES)
def test_onnx_export(name, kwargs):
    check_onnx_export(_cls(name, 'onnx'), kwargs)


@requires_mmdet
@pytest.mark.parametrize('name,kwargs', CASES)
def test_plugin_mmdet_resnet50(name, kwargs):
    check_plugin_mmdet_resnet50(_cls(name, 'plugin_mmdet'), kwargs)


@requires_mmseg
@pytest.mark.parametrize('name,kwargs', CASES)
def test_plugin_mmseg_resnetv1c(name, kwargs):
    check_plugin_mmseg_resnetv1c(_cls(name, 'plugin_mmseg'), kwargs)


# -- conv-like layers: in place of a block's 3x3 conv ------------------------------------------
# (in_channels, out_channels, stride, dilation, groups) of the convs they stand in for
CONV_ARGUMENTS = [(16, 16, 1, 1, 1), (16, 32, 2, 1, 1), (32, 32, 1, 2, 4), (8, 24, 2, 1, 2)]


def has_defaults(cls) -> bool:
    """Whether ``cls`` builds from its required arguments alone (a conv-like layer: the conv's
    arguments); AttnConv2d needs its ``attention``."""
    import inspect
    from mmattn.models.backbones.conv_slot import CONV_ARGS
    params = list(inspect.signature(cls).parameters.items())
    return all(p.default is not p.empty or n in CONV_ARGS + ('in_channels', )
               or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for n, p in params)


def conv_layer_forms(cls):
    """(name, kwargs) of the forms the conv checks run: the defaults (where the class builds
    from a conv's arguments alone) and every entry of ``variants``."""
    forms = [('default', {})] if has_defaults(cls) else []
    return forms + list(getattr(cls, 'variants', {}).items())


def conv_layer_classes():
    """Every registered conv-like layer of mmattn's scope, by name."""
    from mmattn.registry import MODELS
    return {name: cls for name, cls in sorted(MODELS.module_dict.items()) if is_conv_layer(cls)}


def _conv(cls, kwargs, cin, cout, stride=1, dilation=1, groups=1):
    # by keyword, as the conv slot builds it
    return cls(in_channels=cin, out_channels=cout, kernel_size=3, stride=stride,
               padding=dilation, dilation=dilation, groups=groups, bias=False, **kwargs)


def check_conv_shapes(cls, kwargs):
    """The output of the conv it stands in for: out_channels wide, strided, any input size."""
    torch.manual_seed(0)
    for cin, cout, stride, dilation, groups in CONV_ARGUMENTS:
        m = randomize_(_conv(cls, kwargs, cin, cout, stride, dilation, groups)).eval()
        for hw in ((9, 7), (1, 1), (2, 5)):
            x = torch.randn(2, cin, *hw)
            expected = torch.nn.functional.conv2d(
                x, torch.zeros(cout, cin // groups, 3, 3), stride=stride, padding=dilation,
                dilation=dilation, groups=groups).shape
            with torch.no_grad():
                out = m(x)
            assert out.shape == expected, (cls.__name__, kwargs, cin, cout, stride, hw)
            assert torch.isfinite(out).all()


def check_conv_batch_one_training(cls, kwargs):
    m = _conv(cls, kwargs, 16, 16).train()
    for hw in BATCH1_SPATIAL:
        x = torch.randn(1, 16, *hw, requires_grad=True)
        out = m(x)
        assert torch.isfinite(out).all()
        out.sum().backward()
        assert torch.isfinite(x.grad).all()


def check_conv_autocast(cls, kwargs):
    m = randomize_(_conv(cls, kwargs, 32, 32, stride=2, groups=4)).train()
    x = torch.randn(2, 32, 12, 10, requires_grad=True)
    for dtype in AUTOCAST_DTYPES:
        with torch.autocast('cpu', dtype=dtype):
            out = m(x)
        assert torch.isfinite(out.float()).all(), f'{cls.__name__} under {dtype} autocast'
        out.float().sum().backward()


def check_conv_gradients(cls, kwargs):
    """Every parameter gets a gradient; input and parameter gradients match finite differences
    in float64 (eval mode)."""
    from torch.func import functional_call
    torch.manual_seed(0)
    m = randomize_(_conv(cls, kwargs, 16, 24, stride=2, groups=2)).train()
    x = torch.randn(2, 16, 8, 7, requires_grad=True)
    (m(x) * torch.randn(1)).sum().backward()
    missing = [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f'{cls.__name__}: no gradient reaches {missing}'
    m = m.double().eval()
    names = [n for n, p in m.named_parameters() if p.requires_grad]
    params = tuple(p.detach().clone().requires_grad_() for n, p in m.named_parameters()
                   if p.requires_grad)
    x = torch.randn(2, 16, 5, 4, dtype=torch.float64, requires_grad=True)

    def f(x, *args):
        return functional_call(m, dict(zip(names, args)), (x, ))

    assert torch.autograd.gradcheck(f, (x, ) + params, fast_mode=True)


def _slot(cls, kwargs):
    return dict(type=f'mmattn.{cls.__name__}', **kwargs)


def check_conv_slot_mmdet(cls, kwargs):
    """In every block of mmdet's ResNet-50 (conv2), ResNeXt-50 (conv2, grouped) and
    ResNet-18 (conv1 and conv2), as the backbones' conv slots put it."""
    from mmattn.models.backbones import AttnResNet, AttnResNeXt
    for net, channels in (
            (AttnResNet(depth=50, base_channels=16, conv2_cfg=_slot(cls, kwargs)),
             [64, 128, 256, 512]),
            (AttnResNeXt(depth=50, groups=4, base_width=4, base_channels=16,
                         conv2_cfg=_slot(cls, kwargs)), [64, 128, 256, 512]),
            (AttnResNet(depth=18, base_channels=16, conv1_cfg=_slot(cls, kwargs),
                        conv2_cfg=_slot(cls, kwargs)), [16, 32, 64, 128])):
        blocks = [b for i in range(1, 5) for b in getattr(net, f'layer{i}')]
        slots = ('conv1', 'conv2') if net.depth == 18 else ('conv2', )
        assert all(isinstance(getattr(b, s), cls) for b in blocks for s in slots)
        net.train()
        outs = net(torch.randn(2, 3, 64, 64))
        assert [o.shape[1] for o in outs] == channels
        assert [o.shape[2] for o in outs] == [16, 8, 4, 2]
        assert all(torch.isfinite(o).all() for o in outs)


def check_conv_slot_mmseg(cls, kwargs):
    """In mmseg's ResNetV1c with dilated stages (D8): the layer gets each conv's dilation."""
    from mmattn.models.backbones import AttnResNetV1c
    net = AttnResNetV1c(depth=50, base_channels=16, strides=(1, 2, 1, 1),
                        dilations=(1, 1, 2, 4), conv2_cfg=_slot(cls, kwargs),
                        norm_cfg=dict(type='BN'))
    assert all(isinstance(b.conv2, cls) for i in range(1, 5) for b in getattr(net, f'layer{i}'))
    net.train()
    outs = net(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape[1:]) for o in outs] == [(64, 16, 16), (128, 8, 8), (256, 8, 8),
                                                  (512, 8, 8)]


CONV_CHECKS = [
    ('conv_shapes', check_conv_shapes, {}, True),
    ('conv_batch1', check_conv_batch_one_training, {}, True),
    ('conv_autocast', check_conv_autocast, {}, True),
    ('conv_gradients', check_conv_gradients, {}, True),
    ('conv_slot_mmdet', check_conv_slot_mmdet, {}, has_module('mmdet')),
    ('conv_slot_mmseg', check_conv_slot_mmseg, {}, has_module('mmseg')),
]
CONV_CASES = [pytest.param(name, kwargs, id=f'{name}-{vname}')
              for name, cls in conv_layer_classes().items()
              for vname, kwargs in conv_layer_forms(cls)]


@pytest.mark.parametrize('name,kwargs', CONV_CASES)
def test_conv_shapes(name, kwargs):
    check_conv_shapes(conv_layer_classes()[name], kwargs)


@pytest.mark.parametrize('name,kwargs', CONV_CASES)
def test_conv_batch_one_training(name, kwargs):
    check_conv_batch_one_training(conv_layer_classes()[name], kwargs)


@pytest.mark.parametrize('name,kwargs', CONV_CASES)
def test_conv_autocast(name, kwargs):
    check_conv_autocast(conv_layer_classes()[name], kwargs)


@pytest.mark.parametrize('name,kwargs', CONV_CASES)
def test_conv_gradients(name, kwargs):
    check_conv_gradients(conv_layer_classes()[name], kwargs)


@requires_mmdet
@pytest.mark.parametrize('name,kwargs', CONV_CASES)
def test_conv_slot_mmdet(name, kwargs):
    check_conv_slot_mmdet(conv_layer_classes()[name], kwargs)


@requires_mmseg
@pytest.mark.parametrize('name,kwargs', CONV_CASES)
def test_conv_slot_mmseg(name, kwargs):
    check_conv_slot_mmseg(conv_layer_classes()[name], kwargs)


def test_conv_layers_are_found():
    """The registry's conv-like layers are the ones the backbones' conv slot documents, and
    each runs in at least one form."""
    found = conv_layer_classes()
    assert {'SKConv', 'AttnConv2d'} <= set(found)
    assert all(conv_layer_forms(cls) for cls in found.values())


def test_every_check_runs_on_every_case():
    """The tests above and run_conformance cover the same checks."""
    tested = {name[len('test_'):] for name in globals() if name.startswith('test_')}
    checked = {fn.__name__[len('check_'):] for _, fn, _, _ in CHECKS + CONV_CHECKS}
    assert checked == tested - {'every_check_runs_on_every_case', 'conv_layers_are_found'}
