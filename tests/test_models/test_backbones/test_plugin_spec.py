"""Which blocks and stages a plugin spec selects, the errors a wrong spec gets, and the names
plugins get."""
import pytest

from mmattn.models.backbones import resolve_block_plugins, resolve_stage_plugins
from mmattn.models.utils import DropInError
from tests.helpers import requires_mmdet, requires_mmseg

R50 = (3, 4, 6, 3)
CFG = dict(type='X')


def selected(plugins, stage_blocks=R50):
    """(stage, block) pairs that get at least one plugin."""
    layout = resolve_block_plugins(plugins, stage_blocks)
    return {(i, j) for i, stage in enumerate(layout) for j, specs in enumerate(stage) if specs}


def every(stage_blocks=R50, stages=(0, 1, 2, 3)):
    return {(i, j) for i in stages for j in range(stage_blocks[i])}


def test_default_is_every_block_of_every_stage():
    assert selected([dict(cfg=CFG, position='after_conv3')]) == every()
    assert selected([dict(cfg=CFG, position='after_conv3', blocks='all')]) == every()
    assert selected([dict(cfg=CFG, position='after_conv3', blocks=None)]) == every()


def test_stages_select_stages():
    got = selected([dict(cfg=CFG, position='after_conv2', stages=(False, True, True, False))])
    assert got == every(stages=(1, 2))


def test_last_and_first():
    assert selected([dict(cfg=CFG, position='after_conv3', blocks='last')]) == {
        (0, 2), (1, 3), (2, 5), (3, 2)}
    assert selected([dict(cfg=CFG, position='after_conv3', blocks='first',
                          stages=(True, False, False, True))]) == {(0, 0), (3, 0)}


def test_per_stage_blocks_nonlocal_layout():
    # Non-local in every other block of res3 and res4
    got = selected([dict(cfg=CFG, position='after_block', blocks=((), (1, 3), (1, 3, 5), ()))])
    assert got == {(1, 1), (1, 3), (2, 1), (2, 3), (2, 5)}


def test_per_stage_words_and_negative_indices():
    got = selected([dict(cfg=CFG, position='after_conv3', blocks=('last', [0, -1], (), 'all'))])
    assert got == {(0, 2), (1, 0), (1, 3), (3, 0), (3, 1), (3, 2)}
    # a block named twice gets the plugin once
    layout = resolve_block_plugins(
        [dict(cfg=CFG, position='after_conv3', blocks=((2, -1), (), (), ()))], R50)
    assert len(layout[0][2]) == 1


def test_order_and_positions_are_kept():
    plugins = [dict(cfg=dict(type='A'), position='after_conv3'),
               dict(cfg=dict(type='B'), position='after_conv1', blocks='last'),
               dict(cfg=dict(type='C'), position='after_conv3')]
    layout = resolve_block_plugins(plugins, R50)
    assert [(s['cfg']['type'], s['position']) for s in layout[0][2]] == [
        ('A', 'after_conv3'), ('B', 'after_conv1'), ('C', 'after_conv3')]
    assert [s['cfg']['type'] for s in layout[0][0]] == ['A', 'C']


def test_no_plugins():
    assert resolve_block_plugins(None, R50) == [[[]] * 3, [[]] * 4, [[]] * 6, [[]] * 3]
    assert resolve_stage_plugins(None, 4) == [[], [], [], []]


@pytest.mark.parametrize('spec,match', [
    (dict(cfg=CFG, position='after_conv4'), 'position'),
    (dict(cfg=CFG), 'position'),
    (dict(cfg=dict(reduction=4), position='after_conv3'), 'type'),
    (dict(cfg=CFG, position='after_conv3', block='last'), "unknown keys \\['block'\\]"),
    (dict(cfg=CFG, position='after_conv3', stages=(True, True)), 'one bool per stage'),
    (dict(cfg=CFG, position='after_conv3', blocks='middle'), 'blocks'),
    (dict(cfg=CFG, position='after_conv3', blocks=((1, ), (1, ))), 'one entry per stage'),
    (dict(cfg=CFG, position='after_conv3', blocks=((3, ), (), (), ())),
     'block index 3 is out of range for a stage of 3 blocks'),
    (dict(cfg=CFG, position='after_conv3', blocks=((-4, ), (), (), ())), 'out of range'),
    (dict(cfg=CFG, position='after_conv3', blocks=((0.5, ), (), (), ())), 'out of range'),
    (dict(cfg=CFG, position='after_conv3', blocks=(1, 2, 3, 4)), 'tuple of block indices'),
    (dict(cfg=CFG, position='after_conv3', stages=(False, True, True, True),
          blocks=((0, ), (), (), ())), 'switches off'),
])
def test_bad_plugin_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        resolve_block_plugins([spec], R50)


def test_plugins_must_be_a_list():
    with pytest.raises(TypeError, match='list of dicts'):
        resolve_block_plugins(dict(cfg=CFG, position='after_conv3'), R50)
    with pytest.raises(TypeError, match='list of dicts'):
        resolve_stage_plugins(dict(cfg=CFG), 4)


def test_stage_plugins():
    got = resolve_stage_plugins([dict(cfg=dict(type='A'), stages=(True, True, True, False)),
                                 dict(cfg=dict(type='B'))], 4)
    assert [[c['type'] for c in s] for s in got] == [['A', 'B'], ['A', 'B'], ['A', 'B'], ['B']]
    with pytest.raises(ValueError, match='no position or blocks'):
        resolve_stage_plugins([dict(cfg=CFG, position='after_conv3')], 4)
    with pytest.raises(ValueError, match='one bool per stage'):
        resolve_stage_plugins([dict(cfg=CFG, stages=(True, ))], 4)
    with pytest.raises(ValueError, match='type'):
        resolve_stage_plugins([dict(cfg=None)], 4)


# -- plugin names: two of one name are refused, as in mmdet and mmseg ---------------------------
SE_AT = 'mmattn.SE'


def _plugin(position, postfix=None, **kwargs):
    cfg = dict(type=SE_AT, reduction=4)
    if postfix is not None:
        cfg['postfix'] = postfix
    return dict(cfg=cfg, position=position, **kwargs)


def _build(backbone, **kwargs):
    from mmattn.registry import MODELS
    return MODELS.build(dict(type=f'mmattn.{backbone}', depth=50, base_channels=8, **kwargs))


DUPLICATES = [
    # two unnamed plugins of one type at one position
    dict(plugins=[_plugin('after_conv3'), _plugin('after_conv3')]),
    # ... at two positions of one block (mmdet names both 'se' too)
    dict(plugins=[_plugin('after_conv2'), _plugin('after_conv3', blocks='last')]),
    # ... where one is on the block's output
    dict(plugins=[_plugin('after_conv3'), _plugin('after_block')]),
    # a postfix that repeats another plugin's name
    dict(plugins=[_plugin('after_conv3', postfix='_2'), _plugin('after_conv1', postfix='_2')]),
]


@requires_mmdet
@pytest.mark.parametrize('kwargs', DUPLICATES)
def test_two_plugins_of_one_name_in_a_block_are_refused(kwargs):
    with pytest.raises(DropInError, match=r"duplicate plugin 'se(_2)?' in an AttnBottleneck: "
                       r'the block already has a plugin or layer of that name .* Give each '
                       r"plugin of one type its own postfix: cfg=dict\(type='mmattn\.SE', "
                       r"postfix='_2'\) is named 'se(_2)?_2'"):
        _build('AttnResNet', **kwargs)


@requires_mmdet
def test_the_refusal_is_the_assertion_error_of_mmdet_and_mmseg():
    """mmdet's and mmseg's ResNets assert that a block has no plugin of that name yet: code
    written against them (``except AssertionError``) catches ours."""
    from mmdet.models.backbones import ResNet
    plugins = DUPLICATES[0]['plugins']
    with pytest.raises(AssertionError, match="duplicate plugin se"):
        ResNet(depth=50, base_channels=8, plugins=plugins)
    with pytest.raises(AssertionError, match="duplicate plugin 'se'"):
        _build('AttnResNet', plugins=plugins)


@requires_mmseg
def test_segmentation_backbones_refuse_them_too():
    with pytest.raises(DropInError, match="duplicate plugin 'se' in an AttnSegBottleneck"):
        _build('AttnResNetV1c', plugins=DUPLICATES[1]['plugins'])


@requires_mmdet
def test_stage_plugins_of_one_name_in_a_stage_are_refused():
    stage_plugins = [dict(cfg=dict(type=SE_AT), stages=(True, True, False, False)),
                     dict(cfg=dict(type=SE_AT, reduction=4), stages=(False, True, True, False))]
    with pytest.raises(DropInError, match="duplicate plugin 'se' among the stage_plugins of "
                       "one stage .* postfix='_2'"):
        _build('AttnResNet', stage_plugins=stage_plugins)
    stage_plugins[1]['cfg']['postfix'] = '_2'
    net = _build('AttnResNet', stage_plugins=stage_plugins)
    assert [list(dict(getattr(net, f'layer{i}_attn').named_children())) for i in (1, 2, 3)] == [
        ['se'], ['se', 'se_2'], ['se_2']]


@requires_mmdet
def test_a_postfix_names_the_second_plugin_as_in_mmdet():
    from mmdet.models.backbones import ResNet
    plugins = [_plugin('after_conv3'), _plugin('after_conv3', postfix='_2'),
               _plugin('after_conv2', postfix='_c2', blocks='last')]
    net = _build('AttnResNet', plugins=plugins)
    assert net.layer1[0].after_conv3_plugin_names == ['se', 'se_2']
    assert net.layer1[-1].after_conv2_plugin_names == ['se_c2']
    # mmdet's ResNet names the in-branch plugins of every block alike
    ref = ResNet(depth=50, base_channels=8, plugins=plugins[:2])
    assert ref.layer1[0].after_conv3_plugin_names == ['se', 'se_2']
    ours = _build('AttnResNet', plugins=plugins[:2])
    assert list(ours.state_dict()) == list(ref.state_dict())
