"""AttnResNetV1c/V1d: mmseg's ResNets without plugins, with every plugin running."""
import pytest
import torch

pytest.importorskip('mmseg.models', reason='AttnResNetV1c needs mmseg (with mmcv ops)')
from mmseg.models.backbones import ResNetV1c, ResNetV1d  # noqa: E402
from mmseg.registry import MODELS as MMSEG_MODELS  # noqa: E402

from mmattn.models.backbones import AttnResNetV1c, AttnResNetV1d  # noqa: E402
from tests.helpers import assert_close, randomize_  # noqa: E402
from .drop_in import assert_same_init, assert_same_outputs  # noqa: E402
from .freezing import check_frozen_stages  # noqa: E402
from .reference import backbone_reference  # noqa: E402
from .toy_plugins import Affine, AddConst, ZeroGammaNorm  # noqa: E402

DILATED = dict(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4))


def blocks_of(net):
    return [(i, j, b) for i in range(net.num_stages)
            for j, b in enumerate(getattr(net, f'layer{i + 1}'))]


@pytest.mark.parametrize('classes,kwargs', [
    ((ResNetV1c, AttnResNetV1c), dict(depth=18)),
    ((ResNetV1c, AttnResNetV1c), dict(depth=50)),
    ((ResNetV1c, AttnResNetV1c), dict(depth=50, base_channels=16, contract_dilation=True,
                                      **DILATED)),
    ((ResNetV1c, AttnResNetV1c), dict(depth=101, base_channels=8, stem_channels=16,
                                      multi_grid=(1, 2, 4), contract_dilation=True,
                                      **DILATED)),
    ((ResNetV1c, AttnResNetV1c), dict(depth=18, base_channels=16, frozen_stages=1,
                                      norm_eval=True)),
    ((ResNetV1d, AttnResNetV1d), dict(depth=50, base_channels=16, contract_dilation=True,
                                      **DILATED)),
], ids=['v1c-r18', 'v1c-r50', 'v1c-r50-d8', 'v1c-r101-multigrid', 'v1c-r18-frozen',
        'v1d-r50-d8'])
def test_same_as_mmseg_without_plugins(classes, kwargs):
    ref_cls, cls = classes
    ref, ours = ref_cls(**kwargs), cls(**kwargs)

    assert ([(k, v.shape) for k, v in ours.state_dict().items()]
            == [(k, v.shape) for k, v in ref.state_dict().items()])
    assert ([(k, p.requires_grad) for k, p in ours.named_parameters()]
            == [(k, p.requires_grad) for k, p in ref.named_parameters()])
    # dilation, contract_dilation and multi_grid reach the same convs
    assert ([(b.conv2.dilation, b.conv2.stride) for _, _, b in blocks_of(ours)]
            == [(b.conv2.dilation, b.conv2.stride) for _, _, b in blocks_of(ref)])

    assert_same_init(ref, ours)

    assert_same_outputs(ref, ours, 4)


def test_multigrid_dilations_are_mmsegs():
    net = AttnResNetV1c(depth=50, multi_grid=(1, 2, 4), **DILATED)
    assert [b.conv2.dilation[0] for b in net.layer4] == [1, 2, 4]
    net = AttnResNetV1c(depth=50, contract_dilation=True, **DILATED)
    assert [b.conv2.dilation[0] for b in net.layer3] == [1] + [2] * 5
    assert [b.conv2.dilation[0] for b in net.layer4] == [2, 4, 4]


def test_two_plugins_at_one_position_both_run():
    """mmseg 1.2.2 runs only the last of several plugins at a position; here all run."""
    plugins = [dict(cfg=dict(type=Affine), position='after_conv3'),
               dict(cfg=dict(type=AddConst, value=0.5), position='after_conv3'),
               # the same types again in a block: named apart by a postfix, as in mmdet
               dict(cfg=dict(type=Affine, postfix='_c2'), position='after_conv2', blocks='last'),
               dict(cfg=dict(type=AddConst, value=-0.2, postfix='_c2'), position='after_conv2',
                    blocks='last')]
    net = AttnResNetV1c(depth=50, base_channels=8, plugins=plugins,
                        contract_dilation=True, **DILATED)

    def expected(i, j):
        if j == net.stage_blocks[i] - 1:
            return {'after_conv2': ['affine_c2', 'add_c2'], 'after_conv3': ['affine', 'add']}
        return {'after_conv3': ['affine', 'add']}

    for i, j, block in blocks_of(net):
        assert block.after_conv3_plugin_names == expected(i, j)['after_conv3']
        assert block.after_conv2_plugin_names == expected(i, j).get('after_conv2', [])
        for pos, names in expected(i, j).items():
            for name in names:
                width = 8 * 2**i * (4 if pos == 'after_conv3' else 1)
                assert getattr(block, name).in_channels == width, (i, j, name)

    randomize_(net).double().train()
    x = torch.randn(2, 3, 33, 35, dtype=torch.float64)
    outs = net(x)
    for a, b in zip(outs, backbone_reference(net, x, expected)):
        assert_close(a, b)
    # dropping the first plugin of each position (what mmseg's block does) changes the result
    dropped = backbone_reference(
        net, x, lambda i, j: {pos: names[-1:] for pos, names in expected(i, j).items()})
    assert not torch.allclose(outs[-1], dropped[-1])


def test_basicblock_plugins_and_stage_plugins():
    net = AttnResNetV1c(
        depth=18, base_channels=8, stem_channels=16, **DILATED,
        plugins=[dict(cfg=dict(type=Affine), position='after_conv1', blocks=((0, ), (1, ),
                                                                           (0, 1), ())),
                 dict(cfg=dict(type=AddConst), position='after_conv3')],
        stage_plugins=[dict(cfg=dict(type=Affine), stages=(True, True, True, False))])

    def expected(i, j):
        names = {'after_conv3': ['add']}
        if j in ((0, ), (1, ), (0, 1), ())[i]:
            names['after_conv1'] = ['affine']
        return names

    for i, j, block in blocks_of(net):
        assert getattr(block, 'after_conv1_plugin_names') == expected(i, j).get(
            'after_conv1', [])
    assert net.stage_plugin_layers == ['layer1_attn', 'layer2_attn', 'layer3_attn', None]
    assert net.layer3_attn.affine.in_channels == 32

    randomize_(net).double().train()
    x = torch.randn(2, 3, 30, 30, dtype=torch.float64)
    ref = backbone_reference(net, x, expected, {0: ['affine'], 1: ['affine'], 2: ['affine']})
    for a, b in zip(net(x), ref):
        assert_close(a, b)


def test_built_from_mmseg_registry():
    net = MMSEG_MODELS.build(dict(
        type='mmattn.AttnResNetV1c', depth=50, base_channels=8, **DILATED,
        plugins=[dict(cfg=dict(type='mmattn.SE'), position='after_conv3', blocks='last')]))
    assert isinstance(net, AttnResNetV1c)
    assert [hasattr(b, 'se') for b in net.layer2] == [False, False, False, True]
    net.eval()  # mmseg's ResNet.train returns None
    outs = net(torch.randn(1, 3, 32, 32))
    assert [tuple(o.shape[1:]) for o in outs] == [(32, 8, 8), (64, 4, 4), (128, 4, 4),
                                                  (256, 4, 4)]


def test_same_as_mmseg_with_one_plugin_per_position():
    plugins = [dict(cfg=dict(type='mmattn.SE', reduction=4), position='after_conv3'),
               dict(cfg=dict(type=Affine), position='after_conv2',
                    stages=(False, False, True, True))]
    ref = ResNetV1c(depth=50, base_channels=8, plugins=plugins, **DILATED)
    ours = AttnResNetV1c(depth=50, base_channels=8, plugins=plugins, **DILATED)
    assert ([(k, v.shape) for k, v in ours.state_dict().items()]
            == [(k, v.shape) for k, v in ref.state_dict().items()])
    randomize_(ref, scale=0.3)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 32, 32)
    for a, b in zip(ref(x), ours(x)):
        assert torch.equal(a, b)


@pytest.mark.parametrize('freeze_plugins', [False, True])
@pytest.mark.parametrize('classes', [(ResNetV1c, AttnResNetV1c), (ResNetV1d, AttnResNetV1d)],
                         ids=['v1c', 'v1d'])
def test_frozen_stages_and_their_attention_modules(classes, freeze_plugins):
    ref_cls, cls = classes
    kwargs = dict(depth=18, base_channels=8, frozen_stages=1, norm_eval=False)
    net = cls(**kwargs, freeze_plugins=freeze_plugins,
              plugins=[dict(cfg=dict(type=ZeroGammaNorm), position='after_conv2')],
              stage_plugins=[dict(cfg=dict(type=ZeroGammaNorm))])
    check_frozen_stages(net, ref_cls(**kwargs), 1, freeze_plugins)
