"""Parameter counts of ResNet-50 classifiers with each module at its authors' placement.

Fidelity evidence: backbone (depth 50, out_indices=(3,)) + global average pool +
Linear(2048, 1000) must give the parameter counts the authors report, to 0.01 M (SKNet-50: the
ResNeXt-50 32x4d whose 3x3 convs are SK units). A module that
is not registered yet is skipped, saying so.

Every other registered module is placed as its detection config places it
(configs/faster_rcnn_<module>_r50_coco.py), for the model zoo's ResNet-50 overhead table; the
tests at the end check that each placement builds the same modules as its config. The
placements are the classes' ``placement`` attributes (``AUTHORS_PLACEMENT`` reads them).
"""
import glob
import os.path as osp

import pytest

from mmattn.models.backbones import AUTHORS_PLACEMENT
from mmattn.registry import MODELS

# millions of parameters, as the papers (and timm's ports) report them
AUTHORS_COUNTS = {
    'plain': 25.56,  # torchvision's resnet50: 25,557,032
    'SE': 28.09,
    'CBAM': 28.09,
    'SGE': 25.56,
    'SRM': 25.62,
    'TripletAttention': 25.56,
    'SimAM': 25.56,
    # SKNet-50, a ResNeXt-50 32x4d: 27.5 M in the paper, 27.48 M for timm's skresnext50_32x4d
    'SKConv': 27.48,
}

# the authors' placement, from MODULES.md: every block, after conv3
AUTHORS_POSITION = {'SE': 'after_conv3', 'CBAM': 'after_conv3', 'SGE': 'after_conv3',
                    'SRM': 'after_conv3', 'TripletAttention': 'after_conv3'}
# in the conv slot, every block's conv2: SimAM right after the 3x3 conv (before bn2), the SK unit
# in place of it (the AttnConv2d / SKConv config, and the other AttnResNet arguments)
AUTHORS_CONV2 = {
    'SimAM': (dict(type='mmattn.AttnConv2d', attention=dict(type='mmattn.SimAM')), {}),
    'SKConv': (dict(type='mmattn.SKConv'), dict(groups=32, base_width=4)),
}


def _classifier(name):
    pytest.importorskip('mmdet.models', reason='the classifier is built on mmdet\'s ResNet')
    from mmattn.models.backbones import resnet50_classifier
    if name == 'plain':
        return resnet50_classifier()
    if name not in MODELS:
        pytest.skip(f'mmattn.{name} is not registered (yet): no count to check')
    return resnet50_classifier(**AUTHORS_PLACEMENT[name])


def test_placements_are_the_authors():
    assert set(AUTHORS_POSITION) | set(AUTHORS_CONV2) <= set(AUTHORS_PLACEMENT)
    for name in AUTHORS_POSITION:
        placement = AUTHORS_PLACEMENT[name]
        assert set(placement) == {'plugins'}
        (plugin, ) = placement['plugins']
        assert plugin['cfg'] == dict(type=f'mmattn.{name}')
        assert plugin['position'] == AUTHORS_POSITION[name]
        assert plugin.get('stages') is None and plugin.get('blocks') is None  # every block
    for name, (conv2_cfg, others) in AUTHORS_CONV2.items():
        # every stage (no stage_with_conv2_cfg)
        assert AUTHORS_PLACEMENT[name] == dict(others, conv2_cfg=conv2_cfg)


@pytest.mark.parametrize('name', list(AUTHORS_COUNTS))
def test_resnet50_parameter_count(name):
    from mmattn.models.backbones import count_parameters
    model = _classifier(name)
    n = count_parameters(model)
    assert round(n / 1e6, 2) == AUTHORS_COUNTS[name], f'{name}: {n:,} parameters'

    if name != 'plain':
        # the module sits in each of the 16 blocks, once, with the block's width there
        cls = MODELS.get(name)
        blocks = [b for i in range(1, 5) for b in getattr(model.backbone, f'layer{i}')]
        assert len(blocks) == 16
        for block in blocks:
            mods = [m for m in block.modules() if isinstance(m, cls)]
            assert len(mods) == 1
            if name in AUTHORS_CONV2:  # the 3x3 conv's width (a ResNeXt's grouped width)
                assert block.conv2 is mods[0] or block.conv2.attn is mods[0]
                assert mods[0].in_channels == block.conv1.out_channels
            else:
                assert mods[0].in_channels == block.planes * 4


# ResNet-18/34 classifiers (basic blocks; a plugin after_conv3 runs after the second conv and
# norm), as configs/imagenet/resnet{18,34}_*: millions of parameters the papers report
SMALL_COUNTS = {
    ('CBAM', 18): 11.78,  # Woo et al., ECCV 2018, Table 4
    ('CBAM', 34): 21.96,
    ('TripletAttention', 18): 11.69,  # landskape-ai/triplet-attention README
    # SimAM in each basic block's conv2 slot (after its second 3x3 conv, before bn2), no
    # parameters: torchvision's resnet18/34; ZjjConan/SimAM README
    ('SimAM', 18): 11.69,
    ('SimAM', 34): 21.80,
}


@pytest.mark.parametrize('name,depth', list(SMALL_COUNTS))
def test_resnet18_34_parameter_count(name, depth):
    pytest.importorskip('mmdet.models', reason='the classifier is built on mmdet\'s ResNet')
    from mmattn.models.backbones import count_parameters, resnet_classifier
    model = resnet_classifier(depth, **AUTHORS_PLACEMENT[name])
    n = count_parameters(model)
    assert round(n / 1e6, 2) == SMALL_COUNTS[name, depth], f'{name}-{depth}: {n:,} parameters'
    # the module sits in every basic block, once (SimAM: inside conv2, on its output)
    cls = MODELS.get(name)
    blocks = [b for i in range(1, 5) for b in getattr(model.backbone, f'layer{i}')]
    assert len(blocks) == {18: 8, 34: 16}[depth]
    for block in blocks:
        mods = [m for m in block.modules() if isinstance(m, cls)]
        assert len(mods) == 1
        if name == 'SimAM':
            assert block.conv2.attn is mods[0] and mods[0].in_channels == block.conv2.out_channels


def test_exact_counts_plain_and_se():
    """torchvision's ResNet-50 and timm's seresnet50 (the SENet authors' layout), exactly."""
    assert sum(p.numel() for p in _classifier('plain').parameters()) == 25_557_032
    # SE per block: C -> C/16 -> C 1x1 convs with biases
    widths = [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3
    se = sum(2 * c * (c // 16) + c // 16 + c for c in widths)
    assert se == 2_530_992
    assert sum(p.numel() for p in _classifier('SE').parameters()) == 25_557_032 + se


# -- every module: placement as in its detection config ----------------------------------------
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def _types_in(obj):
    """Every ``type`` string in a (nested) config dict or list."""
    if isinstance(obj, dict):
        if isinstance(obj.get('type'), str):
            yield obj['type']
        for value in obj.values():
            yield from _types_in(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _types_in(value)


@pytest.fixture(scope='module')
def backbone_configs():
    """Attention class name -> the Faster R-CNN configs whose backbone places it."""
    from mmengine.config import Config
    found = {}
    for path in sorted(glob.glob(osp.join(ROOT, 'configs', 'faster_rcnn_*_r50_coco.py'))):
        backbone = Config.fromfile(path).model.backbone
        for t in set(_types_in(backbone.to_dict())):
            if t.startswith('mmattn.'):
                found.setdefault(t[len('mmattn.'):], []).append((path, backbone))
    return found


def _attention_summary(backbone, cls):
    """name -> (input width, parameter shapes) of every ``cls`` instance in a backbone.

    Settings that change neither (SimAM's lambda: 0.1 in the config, the paper's default here)
    do not matter to the counts this placement serves."""
    return {name: (m.in_channels, [tuple(p.shape) for p in m.parameters()])
            for name, m in backbone.named_modules() if type(m) is cls}


def _positions(backbone, name):
    """(kind, position, stages, blocks) of every plugin entry of ``mmattn.<name>``, and
    ('conv slot', conv, stages, None) of every conv slot whose layer is or holds it."""
    found = []
    for slot in ('conv1', 'conv2'):
        cfg = backbone.get(f'{slot}_cfg')
        if cfg is not None and f'mmattn.{name}' in set(_types_in(dict(cfg))):
            stages = tuple(backbone.get(f'stage_with_{slot}_cfg') or (True, ) * 4)
            found.append(('conv slot', slot, stages, None))
    for kind in ('plugins', 'stage_plugins'):
        for spec in backbone.get(kind) or []:
            if spec['cfg']['type'] == f'mmattn.{name}':
                stages = tuple(spec.get('stages') or (True, ) * 4)
                blocks = spec.get('blocks')
                blocks = tuple(map(tuple, blocks)) if isinstance(blocks, (list, tuple)) \
                    else blocks
                found.append((kind, spec.get('position'), stages, blocks))
    return sorted(found, key=repr)


def test_every_module_is_placed_or_explained():
    from mmattn.models.factory import attention_classes, missing_declarations
    gaps = [gap for cls in attention_classes().values() for gap in missing_declarations(cls)
            if 'placement' in gap]
    assert not gaps, '\n'.join(gaps)
    placed = {name for name, cls in attention_classes().items() if cls.placement is not None}
    assert set(AUTHORS_PLACEMENT) == placed


@pytest.mark.parametrize('name', sorted(AUTHORS_PLACEMENT))
def test_placement_builds_what_the_detection_config_builds(name, backbone_configs):
    """Same module names, widths and parameter shapes as the config's backbone."""
    pytest.importorskip('mmdet.models', reason='the classifier is built on mmdet\'s ResNet')
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmengine.registry import DefaultScope

    from mmattn.models.backbones import resnet50_classifier
    if name not in backbone_configs:
        pytest.fail(f'no configs/faster_rcnn_*_r50_coco.py places mmattn.{name} in its '
                    'backbone: add one, or give its class a `no_placement` reason in place of '
                    'its `placement`')
    cls = MODELS.get(name)
    ours = _attention_summary(resnet50_classifier(**AUTHORS_PLACEMENT[name]).backbone, cls)
    assert ours, f'AUTHORS_PLACEMENT[{name!r}] places no {name}'
    for path, backbone_cfg in backbone_configs[name]:
        with DefaultScope.overwrite_default_scope('mmdet'):
            backbone = MMDET_MODELS.build(dict(backbone_cfg.to_dict(), init_cfg=None))
        theirs = _attention_summary(backbone, cls)
        assert ours == theirs, f'{name}: classifier placement differs from {path}'
        # the same positions too (a plugin after conv3 or after the block has the same names)
        assert _positions(AUTHORS_PLACEMENT[name], name) == _positions(backbone_cfg, name), \
            f'{name}: plugin positions differ from {path}'


def test_modules_without_placement_have_no_backbone_config(backbone_configs):
    from mmattn.models.factory import attention_classes
    for name, cls in attention_classes().items():
        if cls.no_placement:
            assert name not in backbone_configs, (
                f'{backbone_configs[name][0][0]} places {name} in a backbone: give its class '
                'a `placement` in place of its `no_placement` reason')
