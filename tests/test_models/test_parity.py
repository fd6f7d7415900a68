"""The originals' own expectations, run against ours: a case that fails only for ours is a
parity bug.

mmattn's drop-ins replace OpenMMLab classes in configs and code written for the originals.
The cases here restate what the originals' unit tests check (read, not copied, from mmdet's
``tests/test_models/test_backbones/test_resnet.py``, mmseg's
``tests/test_models/test_backbones/test_resnet.py`` and ``test_heads/test_{ann,cc,da,ocr}_head.py``,
and mmcv's ``tests/test_cnn/test_context_block.py`` and ``test_non_local.py``): the same argument
lists, the exceptions they expect and the attributes they read. Each case is parametrised over
the original class and ours:

- mmdet ``ResNet`` / ``mmattn.AttnResNet`` (and mmdet ``ResNetV1d`` /
  ``AttnResNet(deep_stem=True, avg_down=True)``), mmseg ``ResNetV1c``/``ResNetV1d`` /
  ``mmattn.AttnResNetV1c``/``AttnResNetV1d``;
- mmseg ``ANNHead``/``CCHead``/``DAHead``/``OCRHead`` / ``mmattn.Attn*Head``;
- mmcv ``ContextBlock`` / ``mmattn.GlobalContext``, mmcv ``NonLocal2d`` / ``mmattn.NonLocal``.

The backbone cases with plugins also swap the plugins: mmcv's ``ContextBlock``/``NonLocal2d``
and ours (same ``_abbr_``, so the same attribute names) in either backbone.

Left out, with the reason: the originals' block-level tests (``Bottleneck(..., plugins=...)``:
our blocks are built without plugins and take them from the backbone, which is what the
backbone cases test; mmdet's duplicate-name assert is where ours numbers the second plugin on
purpose); ``pretrained='torchvision://...'`` (a download); our ``NonLocal``'s ``sub_sample``
layout (the authors' pooling before phi and g, where mmcv pools after them, so mmcv's
``g[1]``/``phi`` attributes differ by design) and mmcv's ``zeros_init`` and 1-D/3-D variants,
which ``NonLocal`` does not offer: it is not registered as a replacement of ``NonLocal2d``.
"""
import inspect

import pytest
import torch
from torch.nn.modules import GroupNorm
from torch.nn.modules.batchnorm import _BatchNorm

import mmattn  # noqa: F401
from mmattn.models.utils import DropInError
from tests.helpers import has_module, requires_mmdet, requires_mmseg


def _is_block(m):
    blocks = ()
    if has_module('mmdet'):
        from mmdet.models.backbones.resnet import BasicBlock, Bottleneck
        blocks += (BasicBlock, Bottleneck)
    if has_module('mmseg'):
        from mmseg.models.backbones.resnet import BasicBlock as SB, Bottleneck as SBt
        blocks += (SB, SBt)
    return isinstance(m, blocks)


def _is_norm(m):
    return isinstance(m, (GroupNorm, _BatchNorm))


def _norms_training(modules, train_state):
    return all(m.training == train_state for m in modules if isinstance(m, _BatchNorm))


def _frozen(module):
    return all(not p.requires_grad for p in module.parameters())


def _all_zeros(module):
    return all((p == 0).all() for p in (module.weight, module.bias))


# -- the backbones ------------------------------------------------------------------------------
def _mmdet_resnet(which):
    from mmdet.models.backbones import ResNet

    from mmattn.models.backbones import AttnResNet
    return ResNet if which == 'original' else AttnResNet


def _mmdet_v1d(which):
    if which == 'original':
        from mmdet.models.backbones import ResNetV1d
        return ResNetV1d
    from mmattn.models.backbones import AttnResNet
    return lambda **kw: AttnResNet(deep_stem=True, avg_down=True, **kw)


def _mmseg_resnet(name, which):
    import mmseg.models.backbones as seg

    from mmattn.models import backbones as ours
    return getattr(seg, name) if which == 'original' else getattr(ours, f'Attn{name}')


# every backbone pair, built with keywords (mmseg's V1c/V1d take keywords only)
BACKBONES = [
    pytest.param('mmdet.ResNet', marks=requires_mmdet),
    pytest.param('mmseg.ResNetV1c', marks=requires_mmseg),
    pytest.param('mmseg.ResNetV1d', marks=requires_mmseg),
]
WHICH = ['original', 'ours']


def backbone(name, which):
    if name == 'mmdet.ResNet':
        return _mmdet_resnet(which)
    return _mmseg_resnet(name.split('.')[1], which)


def input_side(name):
    # mmdet's ResNet keeps its norms in eval mode (norm_eval=True by default), mmseg's trains
    # them: a batch of one needs more than 1 x 1 positions at the last stage
    return 32 if name.startswith('mmdet') else 64


def _plugin_cfgs(plugin_set):
    if plugin_set == 'mmcv':
        return dict(type='ContextBlock', ratio=1. / 16), dict(type='NonLocal2d')
    return dict(type='mmattn.GlobalContext', ratio=1. / 16), dict(type='mmattn.NonLocal')


@pytest.mark.parametrize('which', WHICH)
@pytest.mark.parametrize('name', BACKBONES)
def test_backbone_refuses_what_the_original_refuses(name, which):
    cls = backbone(name, which)
    gc = dict(type='ContextBlock', ratio=1. / 16)
    dcn = dict(type='DCN', deform_groups=1, fallback_on_stride=False)
    cases = [
        (KeyError, dict(depth=20)),  # depth in (18, 34, 50, 101, 152)
        (AssertionError, dict(depth=50, num_stages=0)),
        (AssertionError, dict(depth=50, num_stages=5)),
        (AssertionError, dict(depth=50, dcn=dcn, stage_with_dcn=(True, ))),
        # a plugin's stages: one per stage
        (AssertionError, dict(depth=50, plugins=[
            dict(cfg=gc, stages=(False, True, True), position='after_conv3')])),
        # positions: after_conv1/2/3 (ours: also after_block)
        (AssertionError, dict(depth=50, plugins=[dict(cfg=gc, position='after_conv4')])),
        # a plugin's cfg needs a "type" (mmcv's build_plugin_layer), a spec needs a "cfg"
        (KeyError, dict(depth=50, plugins=[dict(cfg=dict(ratio=1. / 16),
                                                position='after_conv3')])),
        (KeyError, dict(depth=50, plugins=[dict(position='after_conv3')])),
        (AssertionError, dict(depth=50, strides=(1, ), dilations=(1, 1), num_stages=3)),
        (TypeError, dict(depth=50, pretrained=0)),
        (AssertionError, dict(depth=50, style='tensorflow')),
    ]
    for error, kwargs in cases:
        with pytest.raises(error):
            cls(**kwargs)


@requires_mmdet
@pytest.mark.parametrize('which', WHICH)
def test_mmdet_positional_arguments(which):
    cls = _mmdet_resnet(which)
    with pytest.raises(KeyError):
        cls(20)
    with pytest.raises(AssertionError):
        cls(50, num_stages=0)
    model = cls(18, 3)  # depth, in_channels
    assert model.depth == 18 and model.conv1.in_channels == 3
    # depth, in_channels, stem_channels, base_channels
    model = cls(50, 4, 6, 2)
    assert model.conv1.in_channels == 4 and model.stem_channels == 6
    assert model.layer1[0].conv1.in_channels == 6 and model.layer1[0].conv1.out_channels == 2


@requires_mmdet
def test_positional_arguments_build_the_same_network():
    """``AttnResNet(*args)`` is ``ResNet(*args)``: same keys, shapes and outputs."""
    ref, ours = _mmdet_resnet('original')(18, 3, 8, 4), _mmdet_resnet('ours')(18, 3, 8, 4)
    assert [(k, v.shape) for k, v in ref.state_dict().items()] == \
        [(k, v.shape) for k, v in ours.state_dict().items()]
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(1, 3, 32, 32)
    ref.eval()  # mmdet's ResNet.train returns None
    ours.eval()
    for a, b in zip(ref(x), ours(x)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@requires_mmdet
def test_every_derived_backbone_keeps_the_originals_signature():
    """For each registered backbone built on an OpenMMLab ResNet (AttnResNet, the V1c/V1d,
    and any added later): the original's parameters first, in its order; ours keyword-only
    after them."""
    from mmattn.models.backbones.res_plugins import AttnResNetMixin
    from mmattn.registry import MODELS
    derived = [cls for cls in MODELS.module_dict.values()
               if isinstance(cls, type) and issubclass(cls, AttnResNetMixin)]
    assert len(derived) >= 1 + has_module('mmseg') * 2
    for cls in derived:
        original = cls.original_class()
        theirs = inspect.signature(original).parameters
        ours = inspect.signature(cls).parameters
        assert set(theirs) <= set(ours), cls

        def positional(params):
            return [(p.name, p.default) for p in params.values()
                    if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]

        assert positional(ours) == positional(theirs), cls
        added = [p for name, p in ours.items() if name not in theirs]
        assert {p.name for p in added} >= {'stage_plugins', 'freeze_plugins'}, cls
        assert all(p.kind == p.KEYWORD_ONLY for p in added), cls


@pytest.mark.parametrize('which', WHICH)
@pytest.mark.parametrize('name', BACKBONES)
def test_backbone_norm_eval_and_frozen_stages(name, which):
    cls = backbone(name, which)
    model = cls(depth=50, norm_eval=True, base_channels=1)
    model.train()
    assert _norms_training(model.modules(), False)

    model = cls(depth=50, frozen_stages=1, base_channels=2)
    model.train()
    stem = [model.stem] if model.deep_stem else [model.conv1, model.norm1]
    assert all(_frozen(m) for m in stem) and _norms_training(stem, False)
    if model.deep_stem:
        assert len(model.stem) == 9
    assert _frozen(model.layer1) and _norms_training(model.layer1.modules(), False)
    assert all(p.requires_grad for p in model.layer2.parameters())


@requires_mmdet
@pytest.mark.parametrize('which', WHICH)
def test_mmdet_v1d_frozen_stem(which):
    model = _mmdet_v1d(which)(depth=50, frozen_stages=1, base_channels=2)
    assert len(model.stem) == 9
    model.train()
    assert _frozen(model.stem) and _norms_training(model.stem, False)
    assert _frozen(model.layer1)


@requires_mmdet
@pytest.mark.parametrize('which', WHICH)
def test_mmdet_stem_channels(which):
    cls = _mmdet_resnet(which)
    for kwargs, stem in [(dict(), 64), (dict(base_channels=3), 3), (dict(stem_channels=3), 3),
                         (dict(stem_channels=3, base_channels=2), 3)]:
        model = cls(50, **kwargs)
        assert model.stem_channels == stem and model.conv1.out_channels == stem
        assert model.norm1.num_features == stem and model.layer1[0].conv1.in_channels == stem
    model = _mmdet_v1d(which)(depth=50, stem_channels=6)
    assert [model.stem[i].out_channels for i in (0, 3, 6)] == [3, 3, 6]
    assert [model.stem[i].num_features for i in (1, 4, 7)] == [3, 3, 6]
    assert model.layer1[0].conv1.in_channels == 6


@pytest.mark.parametrize('which', WHICH)
@pytest.mark.parametrize('name', BACKBONES)
def test_backbone_forwards(name, which):
    cls = backbone(name, which)
    side = input_side(name)
    x = torch.randn(1, 3, side, side)
    sizes = [side // 4 // 2**i for i in range(4)]

    def check(model, widths, indices=(0, 1, 2, 3)):
        model.train()
        feats = model(x)
        assert [tuple(f.shape) for f in feats] == [(1, widths[i], sizes[i], sizes[i])
                                                    for i in indices]

    check(cls(depth=18), [64, 128, 256, 512])
    model = cls(depth=18, with_cp=True)
    assert all(m.with_cp for m in model.modules() if _is_block(m))
    check(model, [64, 128, 256, 512])
    model = cls(depth=50, base_channels=1)
    assert all(isinstance(m, _BatchNorm) for m in model.modules() if _is_norm(m))
    check(model, [4, 8, 16, 32])
    check(cls(depth=50, out_indices=(0, 1, 2), base_channels=1), [4, 8, 16, 32], (0, 1, 2))
    model = cls(depth=50, base_channels=4,
                norm_cfg=dict(type='GN', num_groups=2, requires_grad=True))
    assert all(isinstance(m, GroupNorm) for m in model.modules() if _is_norm(m))
    check(model, [16, 32, 64, 128])
    model = cls(depth=50, zero_init_residual=True, base_channels=1)
    model.init_weights()
    assert all(_all_zeros(m.norm3) for m in model.modules()
               if _is_block(m) and hasattr(m, 'norm3'))
    check(model, [4, 8, 16, 32])


@pytest.mark.parametrize('plugin_set', ['mmcv', 'mmattn'])
@pytest.mark.parametrize('which', WHICH)
@pytest.mark.parametrize('name', BACKBONES)
def test_backbone_plugins_where_the_original_puts_them(name, which, plugin_set):
    cls = backbone(name, which)
    context, nonlocal_ = _plugin_cfgs(plugin_set)
    plugins = [
        dict(cfg=dict(type='GeneralizedAttention', spatial_range=-1, num_heads=8,
                      attention_type='0010', kv_stride=2),
             stages=(False, True, True, True), position='after_conv2'),
        dict(cfg=nonlocal_, position='after_conv2'),
        dict(cfg=context, stages=(False, True, True, False), position='after_conv3'),
    ]
    model = cls(depth=50, plugins=plugins, base_channels=8)
    for i, (has_ga, has_gc) in enumerate([(False, False), (True, True), (True, True),
                                          (True, False)]):
        for m in getattr(model, f'layer{i + 1}').modules():
            if not _is_block(m):
                continue
            assert m.nonlocal_block.in_channels == 8 * 2**i
            assert hasattr(m, 'gen_attention_block') == has_ga
            if has_ga:
                assert m.gen_attention_block.in_channels == 8 * 2**i
            assert hasattr(m, 'context_block') == has_gc
            if has_gc:
                assert m.context_block.in_channels == 32 * 2**i
    model.train()
    side = input_side(name)
    feats = model(torch.randn(1, 3, side, side))
    assert [tuple(f.shape) for f in feats] == [(1, 32 * 2**i, side // 4 // 2**i,
                                                side // 4 // 2**i) for i in range(4)]

    plugins = [dict(cfg=dict(context, postfix=k), stages=(False, True, True, False),
                    position='after_conv3') for k in (1, 2)]
    model = cls(depth=50, plugins=plugins, base_channels=8)
    for i in range(4):
        for m in getattr(model, f'layer{i + 1}').modules():
            if not _is_block(m):
                continue
            assert not hasattr(m, 'context_block')
            for k in (1, 2):
                assert hasattr(m, f'context_block{k}') == (i in (1, 2))
                if i in (1, 2):
                    assert getattr(m, f'context_block{k}').in_channels == 32 * 2**i
    model.train()
    side = input_side(name)
    assert len(model(torch.randn(1, 3, side, side))) == 4


@requires_mmseg
@pytest.mark.parametrize('which', WHICH)
def test_mmseg_v1d_frozen_and_forward(which):
    cls = _mmseg_resnet('ResNetV1d', which)
    model = cls(depth=18, frozen_stages=1)
    assert len(model.stem) == 9
    model.init_weights()
    model.train()
    assert _frozen(model.stem) and _frozen(model.layer1)
    assert _norms_training(model.layer1.modules(), False)
    model = cls(depth=18)
    model.train()
    feats = model(torch.randn(1, 3, 64, 64))
    assert [tuple(f.shape) for f in feats] == [(1, 64 * 2**i, 16 // 2**i, 16 // 2**i)
                                               for i in range(4)]


# -- the decode heads ---------------------------------------------------------------------------
def head(name, which):
    import mmseg.models.decode_heads as seg

    from mmattn.models import heads as ours
    return getattr(seg, name) if which == 'original' else getattr(ours, f'Attn{name}')


@requires_mmseg
@pytest.mark.parametrize('which', WHICH)
def test_ann_head(which):
    cls = head('ANNHead', which)
    inputs = [torch.randn(1, 4, 45, 45), torch.randn(1, 8, 21, 21)]
    model = cls(in_channels=[4, 8], channels=2, num_classes=19, in_index=[-2, -1],
                project_channels=8)
    assert model(inputs).shape == (1, model.num_classes, 21, 21)
    # two inputs, as a list: the original asserts both
    with pytest.raises(AssertionError):
        cls(in_channels=4, channels=2, num_classes=19, in_index=-1, project_channels=8)
    with pytest.raises(AssertionError):
        cls(in_channels=[4, 8, 8], channels=2, num_classes=19, in_index=[0, 1, 2],
            project_channels=8)


@requires_mmseg
@pytest.mark.parametrize('which', WHICH)
def test_cc_head(which):
    cls = head('CCHead', which)
    model = cls(in_channels=32, channels=16, num_classes=19)
    assert len(model.convs) == 2 and hasattr(model, 'cca')
    inputs = [torch.randn(1, 32, 45, 45)]
    try:
        outputs = model(inputs)
    except (RuntimeError, NotImplementedError) as e:
        # mmseg's test runs the original on CUDA only (mmcv's op)
        if which == 'original' and not torch.cuda.is_available():
            pytest.skip(f'mmcv\'s CrissCrossAttention needs CUDA here: {e}')
        raise
    assert outputs.shape == (1, model.num_classes, 45, 45)


@requires_mmseg
@pytest.mark.parametrize('which', WHICH)
def test_da_head(which):
    cls = head('DAHead', which)
    inputs = [torch.randn(1, 32, 45, 45)]
    model = cls(in_channels=32, channels=16, num_classes=19, pam_channels=8)
    outputs = model(inputs)
    assert isinstance(outputs, tuple) and len(outputs) == 3
    assert all(o.shape == (1, model.num_classes, 45, 45) for o in outputs)
    # prediction uses the PAM + CAM output, resized to the image
    meta = [dict(img_shape=(45, 45), pad_shape=(45, 45), ori_shape=(45, 45))]
    pred = model.predict(inputs, meta, None)
    assert pred.shape == (1, model.num_classes, 45, 45)


@requires_mmseg
@pytest.mark.parametrize('which', WHICH)
def test_ocr_head(which):
    from mmseg.models.decode_heads import FCNHead
    cls = head('OCRHead', which)
    inputs = [torch.randn(1, 32, 45, 45)]
    model = cls(in_channels=32, channels=16, num_classes=19, ocr_channels=8)
    prev_output = FCNHead(in_channels=32, channels=16, num_classes=19)(inputs)
    assert model(inputs, prev_output).shape == (1, model.num_classes, 45, 45)


# -- GC and Non-local ---------------------------------------------------------------------------
def context_block(which):
    if which == 'original':
        from mmcv.cnn import ContextBlock
        return ContextBlock
    from mmattn.models.context import GlobalContext
    return GlobalContext


@pytest.mark.parametrize('which', WHICH)
def test_context_block(which):
    cls = context_block(which)
    with pytest.raises(AssertionError):
        cls(16, 1. / 4, pooling_type='unsupport_type')
    with pytest.raises(AssertionError):  # a list or a tuple, not a bare string
        cls(16, 1. / 4, fusion_types='unsupport_type')
    with pytest.raises(AssertionError):
        cls(16, 1. / 4, fusion_types='channel_add')
    with pytest.raises(AssertionError):
        cls(16, 1. / 4, fusion_types=('unsupport_type', ))
    with pytest.raises(AssertionError):
        cls(16, 1. / 4, fusion_types=())

    x = torch.randn(2, 16, 20, 20)
    block = cls(16, 1. / 4, pooling_type='att')
    assert block.conv_mask.in_channels == 16 and block.conv_mask.out_channels == 1
    assert block(x).shape == x.shape
    block = cls(16, 1. / 4, pooling_type='avg')
    assert hasattr(block, 'avg_pool') and not hasattr(block, 'conv_mask')
    assert block(x).shape == x.shape
    for fusion, add, mul in [(('channel_add', ), True, False), (('channel_mul', ), False, True),
                             (('channel_add', 'channel_mul'), True, True),
                             (['channel_mul'], False, True)]:
        block = cls(16, 1. / 4, fusion_types=fusion)
        assert (block.channel_add_conv is not None) == add
        assert (block.channel_mul_conv is not None) == mul
        assert block(x).shape == x.shape


def test_context_block_same_keys_and_outputs():
    """Both pooling types: mmcv's weights in ours give mmcv's output (the avg_pool added for
    parity holds no weights)."""
    from mmcv.cnn import ContextBlock

    from mmattn.models.context import GlobalContext
    from tests.helpers import randomize_
    x = torch.randn(2, 16, 9, 11, dtype=torch.float64)
    for pooling in ('att', 'avg'):
        ref = randomize_(ContextBlock(16, 1. / 4, pooling, ('channel_add', 'channel_mul')))
        ours = GlobalContext(16, 1. / 4, pooling, ('channel_add', 'channel_mul'))
        assert list(ref.state_dict()) == list(ours.state_dict())
        ours.load_state_dict(ref.state_dict())
        torch.testing.assert_close(ours.double().eval()(x), ref.double().eval()(x))


def test_drop_in_error_is_both():
    assert issubclass(DropInError, ValueError) and issubclass(DropInError, AssertionError)
    from mmattn.models.context import GlobalContext
    with pytest.raises(ValueError, match=r"GlobalContext: fusion_types must be a list or "
                       r"tuple.*got str 'channel_add'"):
        GlobalContext(16, fusion_types='channel_add')


def test_a_config_without_type_is_a_key_error_as_in_mmcv():
    """mmcv's build_plugin_layer raises KeyError for a cfg without "type"; ours too, also a
    DropInError, with a message that names the builder and the keys it got, unquoted."""
    from mmcv.cnn import build_plugin_layer

    from mmattn.models import build_attention
    from mmattn.models.backbones import resolve_block_plugins, resolve_stage_plugins
    with pytest.raises(KeyError):
        build_plugin_layer(dict(reduction=16), in_channels=16)
    calls = [
        (lambda: build_attention(dict(reduction=16), 16),
         'build_attention: the config needs a "type"', "['reduction']"),
        (lambda: resolve_block_plugins(
            [dict(cfg=dict(reduction=16), stages=(True, False), position='after_conv2')],
            (2, 2), owner='AttnResNet'),
         'AttnResNet: plugins[0]: "cfg" needs a "type"', "['reduction']"),
        (lambda: resolve_stage_plugins([dict(cfg=dict(reduction=16, ratio=2))], 2),
         'stage_plugins[0]: "cfg" needs a "type"', "['ratio', 'reduction']"),
        (lambda: resolve_block_plugins([dict(position='after_conv2')], (2, 2)),
         'plugins[0]: the plugin spec needs a "cfg"', "['position']"),
    ]
    for call, lead, keys in calls:
        with pytest.raises(KeyError) as info:
            call()
        assert isinstance(info.value, DropInError)
        # str() is the message itself: KeyError's own str() would quote it
        message = str(info.value)
        assert message.startswith(lead) and f'got keys {keys}' in message, message
    # a cfg that is not a dict at all is no missing key: a DropInError (ValueError) only
    with pytest.raises(DropInError) as info:
        resolve_block_plugins([dict(cfg='SE', position='after_conv2')], (2, 2))
    assert not isinstance(info.value, KeyError)


def non_local(which):
    if which == 'original':
        from mmcv.cnn import NonLocal2d
        return NonLocal2d
    from mmattn.models.context import NonLocal
    return NonLocal


@pytest.mark.parametrize('which', WHICH)
def test_non_local(which):
    cls = non_local(which)
    with pytest.raises(ValueError):
        cls(3, mode='unsupport_mode')
    x = torch.randn(2, 3, 20, 20)
    assert cls(3)(x).shape == x.shape
    for mode in ('embedded_gaussian', 'dot_product', 'concatenation', 'gaussian'):
        block = cls(3, mode=mode)
        assert block.mode == mode
        assert hasattr(block, 'phi') == (mode != 'gaussian')
        assert block(x).shape == x.shape
    for mode in ('gaussian', 'dot_product'):
        block = cls(3, mode=mode, sub_sample=True)
        assert block(x).shape == x.shape
    assert cls(3, norm_cfg=dict(type='BN'))(x).shape == x.shape


@requires_mmdet
def test_a_subclass_adds_keyword_only_arguments_the_same_way():
    """The pattern for a drop-in with arguments of its own: they join the signature, keyword
    only, after the original's parameters (the subclass's first, then AttnResNet's and the
    mixin's, in the order of the classes)."""
    from mmattn.models.backbones import AttnResNet

    class WithExtra(AttnResNet):

        def __init__(self, *args, extra=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.extra = extra

    net = WithExtra(18, 3, extra=5, stage_plugins=None)
    assert net.extra == 5 and net.depth == 18 and net.conv1.in_channels == 3
    params = inspect.signature(WithExtra).parameters
    assert list(params)[:3] == ['depth', 'in_channels', 'stem_channels']
    assert [n for n, p in params.items() if p.kind == p.KEYWORD_ONLY] == [
        'extra', 'maxpool_cfg', 'stage_plugins', 'freeze_plugins', 'conv1_cfg',
        'stage_with_conv1_cfg', 'conv2_cfg', 'stage_with_conv2_cfg']
