"""Parameter counts of ResNet-50 classifiers with each module at its authors' placement.

Fidelity evidence (issue 6): backbone (depth 50, out_indices=(3,)) + global average pool +
Linear(2048, 1000) must give the parameter counts the authors report, to 0.01 M. A module that
is not registered yet is skipped, saying so.
"""
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
}

# the authors' placement, from MODULES.md: every block, after conv3 (SimAM: after the 3x3)
AUTHORS_POSITION = {'SE': 'after_conv3', 'CBAM': 'after_conv3', 'SGE': 'after_conv3',
                    'SRM': 'after_conv3', 'TripletAttention': 'after_conv3',
                    'SimAM': 'after_conv2'}


def _classifier(name):
    pytest.importorskip('mmdet.models', reason='the classifier is built on mmdet\'s ResNet')
    from mmattn.models.backbones import resnet50_classifier
    if name == 'plain':
        return resnet50_classifier()
    if name not in MODELS:
        pytest.skip(f'mmattn.{name} is not registered (yet): no count to check')
    return resnet50_classifier(**AUTHORS_PLACEMENT[name])


def test_placements_are_the_authors():
    assert set(AUTHORS_PLACEMENT) == set(AUTHORS_POSITION)
    for name, placement in AUTHORS_PLACEMENT.items():
        assert set(placement) == {'plugins'}
        (plugin, ) = placement['plugins']
        assert plugin['cfg'] == dict(type=f'mmattn.{name}')
        assert plugin['position'] == AUTHORS_POSITION[name]
        assert plugin.get('stages') is None and plugin.get('blocks') is None  # every block


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
            mods = [m for m in block.children() if isinstance(m, cls)]
            assert len(mods) == 1
            width = block.planes * (4 if AUTHORS_POSITION[name] == 'after_conv3' else 1)
            assert mods[0].in_channels == width


def test_exact_counts_plain_and_se():
    """torchvision's ResNet-50 and timm's seresnet50 (the SENet authors' layout), exactly."""
    assert sum(p.numel() for p in _classifier('plain').parameters()) == 25_557_032
    # SE per block: C -> C/16 -> C 1x1 convs with biases
    widths = [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3
    se = sum(2 * c * (c // 16) + c // 16 + c for c in widths)
    assert se == 2_530_992
    assert sum(p.numel() for p in _classifier('SE').parameters()) == 25_557_032 + se
