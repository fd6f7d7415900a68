"""Module arguments: unknown keywords, extra positional arguments and bools for numbers are
refused with the module's name and what it takes, however the module is built; a reduction
that leaves no channel (or more than the input's) warns with the numbers. Generated from the
registry: a new module is checked without an edit here."""
import copy
import inspect
import warnings

import pytest

from mmattn import build_attention
from mmattn.arguments import ArgumentError, BoolForNumberError, is_numeric, parameters
from mmattn.models import attention_classes
from mmattn.models.utils import ReducedWidthWarning, reduced_channels
from mmattn.registry import MODELS
from tests.helpers import requires_mmdet, requires_mmseg

CLASSES = attention_classes()
NAMES = sorted(CLASSES)
# every registered class that is not an attention module: backbones, necks, heads
OTHERS = sorted(name for name, cls in MODELS.module_dict.items()
                if isinstance(cls, type) and name not in CLASSES)


def typo(word: str) -> str:
    """The word with its last letter doubled (``c_m`` -> ``c_mm``: closer to ``c_m`` than to
    ``c_n``)."""
    return word + word[-1]


def own_argument(cls) -> str:
    """The class's first argument after ``in_channels`` (``init_cfg`` for a module that has
    no other)."""
    names = [p for p in inspect.signature(cls).parameters if p not in ('in_channels', 'self')]
    return names[0]


def unknown_argument_match(name, wrong, right):
    return (rf"{name}: unknown argument '{wrong}'; did you mean '{right}'\? {name} takes: "
            rf'.*\b{right}\b')


# -- unknown keywords ---------------------------------------------------------------------------
@pytest.mark.parametrize('name', NAMES)
def test_unknown_keyword_names_module_argument_and_closest(name):
    cls = CLASSES[name]
    right = own_argument(cls)
    wrong = typo(right)
    match = unknown_argument_match(name, wrong, right)
    builds = [lambda: cls(16, **{wrong: 1}),
              lambda: build_attention(name, 16, **{wrong: 1}),
              lambda: build_attention(dict(type=f'mmattn.{name}', **{wrong: 1}), in_channels=16),
              lambda: MODELS.build(dict(type=name, in_channels=16, **{wrong: 1}))]
    for build in builds:
        with pytest.raises(ArgumentError, match=match) as info:
            build()
        assert isinstance(info.value, TypeError)  # what Python raises for it


def test_the_example_of_the_docs():
    with pytest.raises(TypeError, match=r"^SE: unknown argument 'reduciton'; did you mean "
                       r"'reduction'\? SE takes: in_channels, reduction=16, "
                       r"act_cfg=dict\(type='ReLU'\), gate_cfg=dict\(type='Sigmoid'\), "
                       r'init_cfg=None$'):
        build_attention('SE', 64, reduciton=16)


@requires_mmdet
def test_unknown_keyword_in_plugin_and_neck_configs():
    """Built by mmdet's ResNet (mmcv's build_plugin_layer), by ours, by mmdet's registry and
    by the neck: the same message."""
    from mmdet.models.backbones import ResNet
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmengine.registry import DefaultScope
    plugins = [dict(cfg=dict(type='mmattn.CBAM', reductoin=4), position='after_conv3')]
    match = unknown_argument_match('CBAM', 'reductoin', 'reduction')
    with pytest.raises(ArgumentError, match=match):
        ResNet(depth=50, base_channels=8, plugins=plugins)
    with DefaultScope.overwrite_default_scope('mmdet'):
        with pytest.raises(ArgumentError, match=match):
            MMDET_MODELS.build(dict(type='mmattn.AttnResNet', depth=18, plugins=plugins))
        with pytest.raises(ArgumentError, match=match):
            MMDET_MODELS.build(dict(type='mmattn.AttnNeck', in_channels=[64],
                                    attention=dict(type='mmattn.CBAM', reductoin=4)))


def _other_kwargs(name):
    """Arguments that build the class, where it needs some."""
    if name.startswith('AttnResNe'):  # AttnResNet, AttnResNeXt, AttnResNetV1b/c/d
        return dict(depth=18)
    if name == 'AttnNeck':
        return dict(in_channels=[16], attention=dict(type='mmattn.SE'))
    if name == 'AttnConv2d':  # a conv and its attention module
        return dict(in_channels=16, out_channels=8, kernel_size=3,
                    attention=dict(type='mmattn.SimAM'))
    return dict(in_channels=16, channels=8, num_classes=3)


@pytest.mark.parametrize('name', OTHERS)
def test_backbones_necks_and_heads_name_the_closest_argument(name):
    cls = MODELS.get(name)
    params = parameters(cls)
    right = 'levels' if name == 'AttnNeck' else (
        'stage_plugins' if 'stage_plugins' in params.named else next(iter(params.named)))
    wrong = typo(right)
    with pytest.raises(ArgumentError, match=rf"{name}: unknown argument '{wrong}'; did you "
                       rf"mean '{right}'\? {name} takes: .*\b{right}\b"):
        MODELS.build(dict(type=name, **_other_kwargs(name), **{wrong: 1}))


def test_several_unknown_keywords_are_named_together():
    with pytest.raises(ArgumentError, match=r"SE: unknown arguments 'reduciton'; did you mean "
                       r"'reduction'\? 'colour'\. SE takes"):
        build_attention('SE', 64, reduciton=16, colour='red')


# -- positional arguments -----------------------------------------------------------------------
# modules that keep the positional order of the OpenMMLab class they replace, and that class
POSITIONAL_AS = {'GlobalContext': "mmcv's ContextBlock"}


@pytest.mark.parametrize('name', [n for n in NAMES if n not in POSITIONAL_AS])
def test_only_in_channels_is_positional(name):
    cls = CLASSES[name]
    positional = [p.name for p in inspect.signature(cls).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert positional == ['in_channels'], name
    with pytest.raises(ArgumentError, match=rf'{name}: got 2 positional arguments \(16, 3\), '
                       r'but takes 1 \(in_channels\) and the others by keyword'):
        cls(16, 3)


def test_nonlocal_with_mmcvs_positional_sub_sample_is_refused():
    """mmcv's NonLocal2d(16, True) means sub_sample=True; ours would have read reduction."""
    from mmattn.models.context import NonLocal
    with pytest.raises(ArgumentError, match=r"NonLocal: got 2 positional arguments \(16, "
                       r"True\), but takes 1 \(in_channels\) and the others by keyword: their "
                       r"order differs from library to library \(mmcv's NonLocal2d\(16, "
                       r'True\) means sub_sample=True\)'):
        NonLocal(16, True)
    assert NonLocal(16, sub_sample=True).pool is not None


def test_global_context_keeps_the_positional_order_of_mmcvs_context_block():
    from mmcv.cnn import ContextBlock
    from mmattn.models.context import GlobalContext
    theirs = inspect.signature(ContextBlock).parameters
    ours = inspect.signature(GlobalContext).parameters
    assert list(ours)[:4] == list(theirs)[:4] == ['in_channels', 'ratio', 'pooling_type',
                                                  'fusion_types']
    m = GlobalContext(16, 1 / 4, 'avg', ('channel_mul', ))
    assert (m.planes, m.pooling_type, m.fusion_types) == (4, 'avg', ('channel_mul', ))


# -- bools for numbers --------------------------------------------------------------------------
def numeric_arguments(cls):
    return [p.name for p in parameters(cls).named.values() if is_numeric(p)]


@pytest.mark.parametrize('name', NAMES)
def test_a_bool_for_a_number_is_refused(name):
    cls = CLASSES[name]
    numeric = numeric_arguments(cls)
    assert 'in_channels' in numeric
    for arg in numeric:
        kwargs = dict(in_channels=16)
        kwargs[arg] = True
        with pytest.raises(BoolForNumberError, match=rf'^{name}: {arg}=True is a bool, but '
                           rf'{arg} is a number\b') as info:
            cls(**kwargs)
        # a TypeError as Python's, a ValueError as the modules' checks of a number's value
        assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


def test_which_arguments_are_numbers():
    from mmattn.models.channel import ECA, GatherExcite
    from mmattn.models.context import DoubleAttention, NonLocal
    assert numeric_arguments(NonLocal) == ['in_channels', 'reduction']
    assert numeric_arguments(ECA) == ['in_channels', 'kernel_size', 'gamma', 'b']
    assert 'extent' in numeric_arguments(GatherExcite)
    assert {'c_m', 'c_n', 'reduction'} <= set(numeric_arguments(DoubleAttention))
    # switches take bools
    assert NonLocal(16, use_scale=False, sub_sample=True, lean=False).sub_sample is True


def test_bool_positional_in_channels_is_named():
    from mmattn.models.channel import SE
    with pytest.raises(BoolForNumberError, match=r'SE: in_channels=True \(its 1st positional '
                       r'argument\) is a bool, but in_channels is a number'):
        SE(True)


@requires_mmseg
def test_heads_refuse_a_bool_for_a_number():
    with pytest.raises(BoolForNumberError, match='AttnDAHead: pam_channels=True is a bool'):
        MODELS.build(dict(type='AttnDAHead', in_channels=16, channels=8, num_classes=3,
                          pam_channels=True))


# -- reduced widths -----------------------------------------------------------------------------
def test_a_reduction_that_leaves_no_channel_warns_with_the_numbers():
    with pytest.warns(ReducedWidthWarning, match=r"^SE: reduction=128 leaves 64 // 128 = 0 "
                      r'channels for its reduced layer \(in_channels=64\), fewer than the '
                      r"minimum of 1 \(the authors' formula has no floor here\); it is built 1 "
                      r'channel wide\. reduction <= 64 keeps at least one channel\.$'):
        m = build_attention('SE', 64, reduction=128)
    assert m.fc1.out_channels == 1  # the width itself is unchanged


def test_the_warning_names_the_module_the_user_built():
    """SCSE builds a CSE: the warning names SCSE, whose reduction it is."""
    with pytest.warns(ReducedWidthWarning, match=r'^SCSE: reduction=16 leaves 8 // 16 = 0'):
        build_attention('SCSE', 8, reduction=16)


@pytest.mark.parametrize('name,kwargs,match', [
    ('CBAM', dict(reduction=1 / 16), r'^CBAM: reduction=0\.0625 makes its reduced layer '
     r'64 // 0\.0625 = 1024 channels wide, wider than in_channels=64\. reduction divides the '
     r'width: a ratio of 0\.0625 is reduction=16\.$'),
    ('GlobalContext', dict(ratio=16), r'^GlobalContext: ratio=16 makes its reduced layer '
     r'int\(64 \* 16\) = 1024 channels wide, wider than in_channels=64\. ratio multiplies the '
     r'width: a reduction of 16 is ratio=1/16\.$'),
    ('GlobalContext', dict(ratio=1 / 128), r"^GlobalContext: ratio=0\.0078125 leaves "
     r'int\(64 \* 0\.0078125\) = 0 channels .* ratio >= 1/64 keeps at least one channel\.$'),
    ('NonLocal', dict(reduction=128), r'^NonLocal: reduction=128 leaves 64 // 128 = 0'),
    ('RGA', dict(spatial_size=(2, 2)), r'^RGA: spa_ratio=8 leaves 4 // 8 = 0 channels for its '
     r'reduced layer \(the positions of spatial_size=4\)'),
])
def test_other_reduced_widths_warn(name, kwargs, match):
    with pytest.warns(ReducedWidthWarning, match=match):
        build_attention(name, 64, **kwargs)


@pytest.mark.parametrize('name,channels,kwargs', [
    ('SE', 64, dict(reduction=64)),              # one channel, as asked
    ('CoordAttention', 16, dict()),              # the authors' max(8, C // 32)
    ('CoordAttention', 64, dict(reduction=128)),
    ('SelectiveKernel', 64, dict()),             # the authors' max(C // 16, 32)
])
def test_widths_of_the_authors_formula_do_not_warn(name, channels, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter('error', ReducedWidthWarning)
        build_attention(name, channels, **kwargs)


def test_reduced_channels_keeps_its_widths():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', ReducedWidthWarning)
        assert [reduced_channels(c, 16) for c in (8, 16, 64, 256)] == [1, 1, 4, 16]
        assert [reduced_channels(c, 32, min_channels=8) for c in (16, 256, 1024)] == [8, 8, 32]
        assert reduced_channels(64, 1 / 16) == 1024


@requires_mmdet
def test_no_module_warns_at_its_resnet50_placement():
    from mmattn.models.backbones import resnet50_classifier
    with warnings.catch_warnings():
        warnings.simplefilter('error', ReducedWidthWarning)
        for name, cls in CLASSES.items():
            if cls.placement is not None:
                resnet50_classifier(**copy.deepcopy(cls.placement))
