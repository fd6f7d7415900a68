"""Which blocks and stages a plugin spec selects, and the errors a wrong spec gets."""
import pytest

from mmattn.models.backbones import resolve_block_plugins, resolve_stage_plugins

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
