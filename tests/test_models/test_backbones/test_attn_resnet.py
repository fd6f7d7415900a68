"""AttnResNet: mmdet's ResNet without plugins, plugins on every block type, between stages."""
import pytest
import torch

pytest.importorskip('mmdet.models', reason='AttnResNet needs mmdet (with mmcv ops)')
from mmdet.models.backbones import ResNet  # noqa: E402
from mmdet.registry import MODELS as MMDET_MODELS  # noqa: E402

from mmattn.models.backbones import AttnResNet  # noqa: E402
from mmattn.models.channel import SE  # noqa: E402
from tests.helpers import assert_close, randomize_  # noqa: E402
from .drop_in import assert_same_init, assert_same_outputs  # noqa: E402
from .freezing import check_frozen_stages  # noqa: E402
from .reference import backbone_reference, block_reference  # noqa: E402
from .toy_plugins import Affine, AddConst, ZeroGammaNorm  # noqa: E402


def blocks_of(net):
    return [(i, j, b) for i in range(net.num_stages)
            for j, b in enumerate(getattr(net, f'layer{i + 1}'))]


def plugin_names(block):
    if not getattr(block, 'with_plugins', False):
        return {}
    return {pos: list(getattr(block, f'{pos}_plugin_names'))
            for pos in ('after_conv1', 'after_conv2', 'after_conv3')
            if getattr(block, f'{pos}_plugin_names')}


@pytest.mark.parametrize('kwargs', [
    dict(depth=18),
    dict(depth=50),
    dict(depth=50, deep_stem=True, avg_down=True, style='caffe', base_channels=16),
    dict(depth=34, frozen_stages=2, norm_eval=False, base_channels=16),
    dict(depth=101, base_channels=8, strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2),
         out_indices=(1, 3)),
], ids=['r18', 'r50', 'r50-v1d-caffe', 'r34-frozen', 'r101-dilated'])
def test_same_as_mmdet_resnet_without_plugins(kwargs):
    ref, ours = ResNet(**kwargs), AttnResNet(**kwargs)

    # same layers, in the same order, under the same names
    assert ([(k, v.shape) for k, v in ours.state_dict().items()]
            == [(k, v.shape) for k, v in ref.state_dict().items()])
    assert ([(k, p.requires_grad) for k, p in ours.named_parameters()]
            == [(k, p.requires_grad) for k, p in ref.named_parameters()])

    # same initialisation, zero-initialised last norms included
    assert_same_init(ref, ours)
    last_norm = 'norm3' if kwargs['depth'] >= 50 else 'norm2'
    assert all((getattr(b, last_norm).weight == 0).all() for _, _, b in blocks_of(ours))

    # same outputs from the same weights, in eval and in training mode
    assert_same_outputs(ref, ours, len(kwargs.get('out_indices', range(4))))


def test_basicblock_plugins_run_where_documented():
    plugins = [
        dict(cfg=dict(type=Affine), position='after_conv1'),
        dict(cfg=dict(type=AddConst, value=0.5), position='after_conv3'),
        dict(cfg=dict(type=Affine, postfix='_2'), position='after_conv2',
             stages=(False, True, True, True)),
        dict(cfg=dict(type=Affine, postfix='_b'), position='after_conv3', blocks='last'),
    ]
    net = AttnResNet(depth=18, base_channels=8, plugins=plugins, norm_eval=False)

    def expected(i, j):
        last = j == net.stage_blocks[i] - 1
        return {'after_conv1': ['affine'],
                **({'after_conv2': ['affine_2']} if i > 0 else {}),
                'after_conv3': ['add'] + (['affine_b'] if last else [])}

    for i, j, block in blocks_of(net):
        assert plugin_names(block) == expected(i, j), (i, j)
        for names in expected(i, j).values():
            for name in names:
                assert getattr(block, name).in_channels == 8 * 2**i

    randomize_(net).double().train()
    x = torch.randn(2, 3, 37, 29, dtype=torch.float64)
    outs = net(x)
    ref = backbone_reference(net, x, expected)
    for a, b in zip(outs, ref):
        assert_close(a, b)
    # the plugins are on the gradient path
    sum(o.sum() for o in outs).backward()
    for i, j, block in blocks_of(net):
        assert block.affine.weight.grad.abs().sum() > 0


def test_bottleneck_plugins_in_chosen_blocks_all_run_in_order():
    nonlocal_blocks = ((), (1, 3), (1, 3, 5), ())
    plugins = [
        dict(cfg=dict(type=Affine), position='after_conv3'),
        dict(cfg=dict(type=AddConst, value=-0.3, postfix='_c2'), position='after_conv2',
             blocks='last'),
        dict(cfg=dict(type=AddConst, value=0.7), position='after_conv3'),
        dict(cfg=dict(type=Affine, postfix='_c1'), position='after_conv1', blocks=nonlocal_blocks),
    ]
    net = AttnResNet(depth=50, base_channels=8, plugins=plugins, norm_eval=False)

    def expected(i, j):
        # two plugins of one type in a block are told apart by their postfix
        names = {}
        if j in nonlocal_blocks[i]:
            names['after_conv1'] = ['affine_c1']
        if j == net.stage_blocks[i] - 1:
            names['after_conv2'] = ['add_c2']
        names['after_conv3'] = ['affine', 'add']
        return names

    for i, j, block in blocks_of(net):
        assert plugin_names(block) == expected(i, j), (i, j)
        planes = 8 * 2**i
        for pos, names in expected(i, j).items():
            for name in names:
                width = planes * 4 if pos == 'after_conv3' else planes
                assert getattr(block, name).in_channels == width, (i, j, name)

    randomize_(net).double().train()
    x = torch.randn(2, 3, 35, 41, dtype=torch.float64)
    for a, b in zip(net(x), backbone_reference(net, x, expected)):
        assert_close(a, b)

    # the reference is sensitive to the order: swapping the two after_conv3 plugins differs
    block = net.layer1[0]
    y = torch.randn(2, 8, 9, 9, dtype=torch.float64)  # the stem's width
    assert expected(0, 0) == {'after_conv3': ['affine', 'add']}
    swapped = {'after_conv3': ['add', 'affine']}
    assert not torch.allclose(block_reference(block, y, expected(0, 0)),
                              block_reference(block, y, swapped))


def test_stage_plugins_refine_stage_outputs():
    stage_plugins = [dict(cfg=dict(type=Affine), stages=(True, True, True, False)),
                     dict(cfg=dict(type=AddConst, value=0.25))]
    net = AttnResNet(depth=18, base_channels=8, stage_plugins=stage_plugins, norm_eval=False,
                     plugins=[dict(cfg=dict(type=Affine), position='after_conv3',
                                   blocks='last')])
    assert net.stage_plugin_layers == ['layer1_attn', 'layer2_attn', 'layer3_attn',
                                       'layer4_attn']
    expected = {i: ['affine', 'add'] for i in range(3)}
    expected[3] = ['add']
    for i, names in expected.items():
        container = getattr(net, f'layer{i + 1}_attn')
        assert list(dict(container.named_children())) == names
        assert all(getattr(container, n).in_channels == 8 * 2**i for n in names)

    randomize_(net).double().train()
    x = torch.randn(2, 3, 33, 30, dtype=torch.float64)
    ref = backbone_reference(
        net, x, lambda i, j: {'after_conv3': ['affine']} if j == 1 else {}, expected)
    for a, b in zip(net(x), ref):
        assert_close(a, b)

    # out_indices still pick the (refined) stage outputs
    net.out_indices = (1, 3)
    outs = net(x)
    assert len(outs) == 2
    assert_close(outs[0], ref[1])
    assert_close(outs[1], ref[3])


@pytest.mark.parametrize('norm_eval', [False, True])
@pytest.mark.parametrize('freeze_plugins', [False, True])
def test_frozen_stages_and_their_attention_modules(freeze_plugins, norm_eval):
    """frozen_stages freezes mmdet's layers as mmdet does; the block and stage plugins of a
    frozen stage train unless freeze_plugins; their norms follow norm_eval."""
    kwargs = dict(depth=18, base_channels=8, frozen_stages=2, norm_eval=norm_eval)
    net = AttnResNet(**kwargs, freeze_plugins=freeze_plugins,
                     plugins=[dict(cfg=dict(type=ZeroGammaNorm), position='after_conv1')],
                     stage_plugins=[dict(cfg=dict(type=ZeroGammaNorm))])
    check_frozen_stages(net, ResNet(**kwargs), 2, freeze_plugins)


def test_freeze_plugins_must_be_a_bool():
    with pytest.raises(TypeError, match='AttnResNet: freeze_plugins must be a bool'):
        AttnResNet(depth=18, freeze_plugins='yes')


def test_init_weights_keeps_plugin_authors_init():
    """The backbone's init sets every BN weight to 1; the plugins' zero gammas must survive."""
    net = AttnResNet(depth=18, base_channels=8,
                     plugins=[dict(cfg=dict(type=ZeroGammaNorm), position='after_conv1')],
                     stage_plugins=[dict(cfg=dict(type=ZeroGammaNorm))])
    randomize_(net)
    net.init_weights()
    plugins = [b.zgn for _, _, b in blocks_of(net)]
    plugins += [getattr(net, f'layer{i}_attn').zgn for i in range(1, 5)]
    for m in plugins:
        assert (m.bn.weight == 0).all() and (m.bn.bias == 0).all()
        # the backbone's Kaiming init reached the plugin's conv (zero bias, as mmengine sets)
        assert (m.conv.bias == 0).all()
    assert all((b.norm2.weight == 0).all() for _, _, b in blocks_of(net))


def test_with_cp_gives_the_same_gradients():
    plugins = [dict(cfg=dict(type=Affine), position='after_conv1'),
               dict(cfg=dict(type=Affine, postfix='_2'), position='after_conv3')]
    nets = [AttnResNet(depth=18, base_channels=8, plugins=plugins, norm_eval=False,
                       with_cp=cp) for cp in (False, True)]
    randomize_(nets[0]).double().train()
    nets[1].load_state_dict(nets[0].state_dict())
    nets[1].double().train()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    grads = []
    for net in nets:
        xi = x.clone().requires_grad_()
        sum(o.sum() for o in net(xi)).backward()
        grads.append([xi.grad] + [p.grad for p in net.parameters()])
    for a, b in zip(*grads):
        assert_close(a, b)


def test_built_from_mmdet_registry_with_registered_plugins():
    cfg = dict(type='mmattn.AttnResNet', depth=18, base_channels=16,
               plugins=[dict(cfg=dict(type='mmattn.SE', reduction=4), position='after_conv3')],
               stage_plugins=[dict(cfg=dict(type='mmattn.SE'), stages=(True, False, False,
                                                                      False))])
    net = MMDET_MODELS.build(cfg)
    assert isinstance(net, AttnResNet)
    assert all(isinstance(b.se, SE) and b.se.fc1.out_channels == 16 * 2**i // 4
               for i, _, b in blocks_of(net))
    assert isinstance(net.layer1_attn.se, SE)
    outs = net(torch.randn(2, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [16, 32, 64, 128]


def test_errors_are_clear():
    with pytest.raises(ValueError, match='out of range for a stage of 2 blocks'):
        AttnResNet(depth=18, plugins=[dict(cfg=dict(type=Affine), position='after_conv3',
                                           blocks=((2, ), (), (), ()))])
    with pytest.raises(ValueError, match='position'):
        AttnResNet(depth=18, plugins=[dict(cfg=dict(type=Affine), position='after_relu')])
    with pytest.raises(KeyError, match='NoSuchModule'):
        AttnResNet(depth=18, plugins=[dict(cfg=dict(type='mmattn.NoSuchModule'),
                                           position='after_conv3')])


def test_same_as_mmdet_resnet_with_mmdet_plugins():
    """A config that mmdet's ResNet accepts gives the same network: checkpoints carry over."""
    plugins = [dict(cfg=dict(type='mmattn.SE', reduction=4), position='after_conv3',
                    stages=(False, True, True, True)),
               dict(cfg=dict(type=Affine), position='after_conv1'),
               dict(cfg=dict(type=Affine, postfix='_x'), position='after_conv2')]
    ref = ResNet(depth=50, base_channels=8, plugins=plugins, norm_eval=False)
    ours = AttnResNet(depth=50, base_channels=8, plugins=plugins, norm_eval=False)
    assert ([(k, v.shape) for k, v in ours.state_dict().items()]
            == [(k, v.shape) for k, v in ref.state_dict().items()])
    randomize_(ref, scale=0.3)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 32, 32)
    for a, b in zip(ref(x), ours(x)):
        assert torch.equal(a, b)


REAL_LAYOUTS = {
    # GSoP: the last block of each stage
    'GSoP': dict(plugins=[dict(cfg=dict(type='mmattn.GSoP'), position='after_conv3',
                               blocks='last')]),
    # Non-local: every other block of res3 and res4, on the block's output
    'NonLocal': dict(plugins=[dict(cfg=dict(type='mmattn.NonLocal'), position='after_block',
                                   blocks=((), (1, 3), (1, 3, 5), ()))]),
    # BAM and residual attention: between stages, after res2..res4
    'BAM': dict(stage_plugins=[dict(cfg=dict(type='mmattn.BAM'),
                                    stages=(True, True, True, False))]),
    'ResidualAttention': dict(stage_plugins=[dict(cfg=dict(type='mmattn.ResidualAttention'),
                                                  stages=(True, True, True, False))]),
}


@pytest.mark.parametrize('name', list(REAL_LAYOUTS))
def test_registered_modules_in_chosen_blocks_and_between_stages(name):
    from mmattn.registry import MODELS
    if name not in MODELS:
        pytest.skip(f'mmattn.{name} is not registered (yet)')
    cls = MODELS.get(name)
    net = AttnResNet(depth=50, base_channels=16, norm_eval=False, **REAL_LAYOUTS[name])
    where = []
    for i, j, block in blocks_of(net):
        mods = [m for m in block.children() if isinstance(m, cls)]
        assert all(m.in_channels == 16 * 2**i * 4 for m in mods)
        where += [(i, j)] * len(mods)
    for i in range(4):
        attn = net._modules.get(f'layer{i + 1}_attn')
        mods = [] if attn is None else [m for m in attn.children() if isinstance(m, cls)]
        assert all(m.in_channels == 16 * 2**i * 4 for m in mods)
        where += [(i, 'after')] * len(mods)
    assert where == {
        'GSoP': [(0, 2), (1, 3), (2, 5), (3, 2)],
        'NonLocal': [(1, 1), (1, 3), (2, 1), (2, 3), (2, 5)],
        'BAM': [(0, 'after'), (1, 'after'), (2, 'after')],
        'ResidualAttention': [(0, 'after'), (1, 'after'), (2, 'after')],
    }[name]

    net.init_weights()
    randomize_(net, scale=0.1)
    net.train()
    outs = net(torch.randn(2, 3, 128, 96))
    assert [tuple(o.shape[1:]) for o in outs] == [(64, 32, 24), (128, 16, 12), (256, 8, 6),
                                                  (512, 4, 3)]
    sum(o.sum() for o in outs).backward()
    for m in net.modules():
        if isinstance(m, cls):
            assert all(p.grad is not None and torch.isfinite(p.grad).all()
                       for p in m.parameters())


def test_train_returns_the_module_as_nn_module_does():
    """mmdet's ResNet.train returns None; ours returns the backbone, so chains such as
    ``backbone.to(device).train()`` work, and the mode still reaches the frozen stages."""
    assert ResNet(depth=18).train() is None  # the original, unchanged
    model = AttnResNet(depth=18, frozen_stages=1)
    assert model.train() is model and model.training
    assert model.train(False) is model and not model.training
    assert not model.train().layer1.training  # frozen: eval whatever the mode
