"""``position='after_block'``: a plugin on a residual block's output, after the sum and its ReLU.

This is where Non-local's authors add their block (facebookresearch/video-nonlocal-net,
``lib/models/resnet_helper.py::res_stage_nonlocal``: after ``_generic_residual_block_3d``,
whose last op is the ReLU after the sum), in blocks 1, 3 of res3 and 1, 3, 5 of res4.

The reference here is the plain (plugin-free) mmdet/mmseg block, run as it is, followed by the
plugin module called by hand: it shares no code with the attention backbones' forward.
"""
import re

import pytest
import torch
from torch import nn

from mmattn.models.backbones import resolve_block_plugins
from tests.helpers import assert_close, has_module, randomize_
from .reference import backbone_reference
from .toy_plugins import Affine, AddConst

NONLOCAL_BLOCKS = ((), (1, 3), (1, 3, 5), ())
DILATED = dict(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4))


def _classes(lib):
    """(plain backbone, attention backbone) of mmdet or mmseg."""
    pytest.importorskip(f'{lib}.models', reason=f'needs {lib} (with mmcv ops)')
    if lib == 'mmdet':
        from mmdet.models.backbones import ResNet
        from mmattn.models.backbones import AttnResNet
        return ResNet, AttnResNet
    from mmseg.models.backbones import ResNetV1c
    from mmattn.models.backbones import AttnResNetV1c
    return ResNetV1c, AttnResNetV1c


def blocks_of(net):
    return [(i, j, b) for i in range(net.num_stages)
            for j, b in enumerate(getattr(net, f'layer{i + 1}'))]


def plain_copy(net, plain_cls, kwargs):
    """The plugin-free backbone with ``net``'s weights; checks the key layout on the way."""
    plain = plain_cls(**kwargs)
    plugin_keys = [k for k in net.state_dict() if k not in plain.state_dict()]
    # the attention backbone's keys are the plain one's, in order, plus the plugins' keys
    assert [k for k in net.state_dict() if k not in plugin_keys] == list(plain.state_dict())
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if k not in plugin_keys})
    return plain.to(next(net.parameters()).dtype), plugin_keys


def by_hand(plain, net, x, after_block):
    """Plain blocks, then ``after_block(i, j)``'s plugins of ``net`` called one by one."""
    if plain.deep_stem:
        x = plain.stem(x)
    else:
        x = plain.relu(plain.norm1(plain.conv1(x)))
    x = plain.maxpool(x)
    outs = []
    for i in range(plain.num_stages):
        ours = getattr(net, f'layer{i + 1}')
        for j, block in enumerate(getattr(plain, f'layer{i + 1}')):
            x = block(x)
            for name in after_block(i, j):
                x = getattr(ours[j], name)(x)
        if i in plain.out_indices:
            outs.append(x)
    return outs


CASES = {
    'mmdet-r50': ('mmdet', dict(depth=50, base_channels=8), NONLOCAL_BLOCKS),
    'mmdet-r18': ('mmdet', dict(depth=18, base_channels=8), ((0, ), (1, ), (0, 1), ())),
    'mmseg-r50-d8': ('mmseg', dict(depth=50, base_channels=8, contract_dilation=True,
                                   **DILATED), NONLOCAL_BLOCKS),
    'mmseg-r18': ('mmseg', dict(depth=18, base_channels=8), ((0, ), (1, ), (0, 1), ())),
}


@pytest.mark.parametrize('case', list(CASES))
def test_equals_plain_block_then_plugin(case):
    lib, kwargs, blocks = CASES[case]
    plain_cls, cls = _classes(lib)
    # AddConst < 0 after the ReLU makes outputs that no in-branch placement could give
    plugins = [dict(cfg=dict(type=Affine), position='after_block', blocks=blocks),
               dict(cfg=dict(type=AddConst, value=-0.4), position='after_block',
                    blocks=blocks)]
    net = cls(plugins=plugins, norm_eval=False, **kwargs)

    def after_block(i, j):
        return ['affine', 'add'] if j in blocks[i] else []

    for i, j, block in blocks_of(net):
        assert getattr(block, 'after_block_plugin_names', []) == after_block(i, j), (i, j)
        if after_block(i, j):
            assert not any(getattr(block, f'after_conv{k}_plugin_names') for k in (1, 2, 3))
            width = 8 * 2**i * block.expansion
            assert block.affine.in_channels == block.add.in_channels == width
    randomize_(net)
    net.double()
    net.train()
    plain, plugin_keys = plain_copy(net, plain_cls, dict(norm_eval=False, **kwargs))
    plain.train()
    assert plugin_keys == [f'layer{i + 1}.{j}.affine.{p}' for i in range(4)
                           for j in blocks[i] for p in ('weight', 'bias')]

    x = torch.randn(2, 3, 37, 33, dtype=torch.float64)
    outs = net(x)
    ref = by_hand(plain, net, x, after_block)
    for a, b in zip(outs, ref):
        assert_close(a, b)
    assert (outs[2] < 0).any()  # the plugins ran after the ReLU
    # and they did something: the plain network differs
    assert not torch.allclose(plain(x)[2], outs[2])
    # the written-out reference (reference.py) agrees too
    for a, b in zip(outs, backbone_reference(net, x, lambda i, j: {
            'after_block': after_block(i, j)})):
        assert_close(a, b)


@pytest.mark.parametrize('lib', ['mmdet', 'mmseg'])
def test_nonlocal_at_the_authors_blocks(lib):
    from mmattn.models.context import NonLocal
    plain_cls, cls = _classes(lib)
    kwargs = dict(depth=50, base_channels=16, norm_eval=False)
    net = cls(plugins=[dict(cfg=dict(type='mmattn.NonLocal'), position='after_block',
                            stages=(False, True, True, False), blocks=NONLOCAL_BLOCKS)],
              **kwargs)
    where = [(i, j) for i, j, b in blocks_of(net) for m in b.children()
             if isinstance(m, NonLocal)]
    assert where == [(1, 1), (1, 3), (2, 1), (2, 3), (2, 5)]
    for i, j in where:
        block = getattr(net, f'layer{i + 1}')[j]
        assert block.after_block_plugin_names == ['nonlocal_block']
        assert block.nonlocal_block.in_channels == 16 * 2**i * 4

    # the plugins' weights are under layer{i}.{j}.nonlocal_block, after the block's own
    plain = plain_cls(**kwargs)
    keys = list(net.state_dict())
    assert [k for k in keys if k in plain.state_dict()] == list(plain.state_dict())
    nl_keys = [k for k in keys if k not in plain.state_dict()]
    assert {re.sub(r'\.nonlocal_block\..*', '', k) for k in nl_keys} == {
        f'layer{i + 1}.{j}' for i, j in where}
    for i, j in where:
        block_keys = [k for k in keys if k.startswith(f'layer{i + 1}.{j}.')]
        n = len([k for k in block_keys if '.nonlocal_block.' in k])
        assert all('.nonlocal_block.' in k for k in block_keys[-n:])

    # initialised, each Non-local block is the identity (its output BN starts at 0):
    # the network is the plain ResNet
    net.init_weights()
    assert all((getattr(net, f'layer{i + 1}')[j].nonlocal_block.norm.weight == 0).all()
               for i, j in where)
    plain, _ = plain_copy(net, plain_cls, kwargs)
    net.eval()
    plain.eval()
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        for a, b in zip(net(x), plain(x)):
            assert_close(a, b, rtol=1e-5, atol=1e-6)

    # trained weights: the plain block, then the Non-local block by hand
    randomize_(net, scale=0.3)
    net.double()
    net.train()
    plain, _ = plain_copy(net, plain_cls, kwargs)
    plain.train()
    x = torch.randn(2, 3, 64, 48, dtype=torch.float64)
    outs = net(x)
    ref = by_hand(plain, net, x, lambda i, j: ['nonlocal_block'] if (i, j) in where else [])
    for a, b in zip(outs, ref):
        assert_close(a, b)
    assert not torch.allclose(plain(x)[2], outs[2])


class Counting(Affine):
    """Affine that counts its forward calls (a checkpointed one runs again in backward)."""

    _abbr_ = 'counting'

    def __init__(self, in_channels):
        super().__init__(in_channels)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return super().forward(x)


@pytest.mark.parametrize('lib,depth', [('mmdet', 18), ('mmdet', 50), ('mmseg', 18),
                                       ('mmseg', 50)])
def test_with_cp_same_gradients_and_checkpointed(lib, depth):
    _, cls = _classes(lib)
    blocks = ((0, ), (1, ), (0, 1), ())
    plugins = [dict(cfg=dict(type=Counting), position='after_block', blocks=blocks),
               dict(cfg=dict(type=Affine), position='after_conv3', blocks='last')]
    nets = [cls(depth=depth, base_channels=8, plugins=plugins, norm_eval=False, with_cp=cp)
            for cp in (False, True)]
    randomize_(nets[0])
    nets[0].double()
    nets[1].load_state_dict(nets[0].state_dict())
    nets[1].double()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    grads, calls = [], []
    for net in nets:
        net.train()
        xi = x.clone().requires_grad_()
        sum(o.sum() for o in net(xi)).backward()
        grads.append([xi.grad] + [p.grad for p in net.parameters()])
        calls.append(sum(m.calls for m in net.modules() if isinstance(m, Counting)))
    for a, b in zip(*grads):
        assert_close(a, b)
    # every after_block plugin got a gradient
    assert all(m.weight.grad.abs().sum() > 0 for m in nets[1].modules()
               if isinstance(m, Counting))
    # with_cp recomputes the after_block plugins in backward instead of keeping activations
    assert calls == [4, 8]


@pytest.mark.parametrize('lib', ['mmdet', 'mmseg'])
@pytest.mark.parametrize('depth', [18, 50])
def test_with_other_positions_in_one_block(lib, depth):
    """after_block runs after the ReLU, after the in-branch plugins; built last."""
    _, cls = _classes(lib)
    # two plugins of one type in a block need their own postfix, as in mmdet
    plugins = [dict(cfg=dict(type=Affine, postfix='_2'), position='after_block', blocks='last'),
               dict(cfg=dict(type=AddConst, value=0.3), position='after_conv3'),
               dict(cfg=dict(type=Affine), position='after_conv1', blocks='first'),
               dict(cfg=dict(type=AddConst, value=-0.6, postfix='_2'), position='after_block')]
    net = cls(depth=depth, base_channels=8, plugins=plugins, norm_eval=False)

    def expected(i, j):
        first, last = j == 0, j == net.stage_blocks[i] - 1
        names = {'after_conv3': ['add']}
        if first:
            names['after_conv1'] = ['affine']
        names['after_block'] = (['affine_2'] if last else []) + ['add_2']
        return names

    for i, j, block in blocks_of(net):
        for pos in ('after_conv1', 'after_conv2', 'after_conv3', 'after_block'):
            assert getattr(block, f'{pos}_plugin_names') == expected(i, j).get(pos, []), (
                i, j, pos)
        # modules are added position by position: after_block's come last
        children = list(dict(block.named_children()))
        names = expected(i, j)
        built = names.get('after_conv1', []) + names['after_conv3'] + names['after_block']
        assert children[-len(built):] == built

    randomize_(net)
    net.double()
    net.train()
    x = torch.randn(2, 3, 35, 41, dtype=torch.float64)
    outs = net(x)
    for a, b in zip(outs, backbone_reference(net, x, expected)):
        assert_close(a, b)
    # the same plugins moved into the branch (after_conv3) give another result
    moved = backbone_reference(net, x, lambda i, j: {
        'after_conv1': expected(i, j).get('after_conv1', []),
        'after_conv3': expected(i, j)['after_conv3'] + expected(i, j)['after_block']})
    assert not torch.allclose(outs[-1], moved[-1])


@pytest.mark.parametrize('lib', ['mmdet', 'mmseg'])
def test_bad_position_names_the_valid_ones(lib):
    _, cls = _classes(lib)
    valid = r"\('after_conv1', 'after_conv2', 'after_conv3', 'after_block'\)"
    with pytest.raises(ValueError, match=rf'plugins\[0\]: "position" must be one of {valid}, '
                                         r"got 'after_relu'"):
        cls(depth=18, plugins=[dict(cfg=dict(type=Affine), position='after_relu')])
    with pytest.raises(ValueError, match=valid):
        resolve_block_plugins([dict(cfg=dict(type='X'), position='after_blocks')],
                              (3, 4, 6, 3))


def test_plain_network_unchanged_without_after_block():
    """No after_block plugin: forward is the original block's, bit for bit."""
    if not has_module('mmdet'):
        pytest.skip('needs mmdet')
    plain_cls, cls = _classes('mmdet')
    net = cls(depth=18, base_channels=8, norm_eval=False,
              plugins=[dict(cfg=dict(type=nn.Identity), position='after_conv1',
                            blocks='first')])
    assert all(b.after_block_plugin_names == [] for _, _, b in blocks_of(net)
               if getattr(b, 'with_plugins', False))
    randomize_(net)
    plain, keys = plain_copy(net, plain_cls, dict(depth=18, base_channels=8, norm_eval=False))
    assert keys == []
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(net(x), plain(x)):
            assert torch.equal(a, b)
