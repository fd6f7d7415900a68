"""The conv slot of the attention backbones (``conv2_cfg`` / ``conv1_cfg`` with their stages
switches, ``mmattn/models/backbones/conv_slot.py``).

- Unused (no config, or no stage selected), every backbone is its original, key for key and
  output for output.
- With ``mmattn.SKConv`` or ``mmattn.AttnConv2d`` + SimAM, a block computes its authors' block,
  assembled here by hand from the authors' descriptions (implus/SKNet's prototxt, timm's
  ``SelectiveKernelBasic``, ZjjConan/SimAM's ``resnet.py``) with ``torch.nn.functional`` on the
  block's own tensors, in float64, in eval and train mode.
- The layer gets the replaced conv's arguments (width, stride, dilation, groups) in mmdet's and
  mmseg's blocks, the backbone's norm config, and its attention modules train in frozen stages.
- Bad input is refused before anything is built, saying what is wrong.
"""
import inspect

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip('mmdet.models', reason='the backbones need mmdet (with mmcv ops)')
from mmdet.models.backbones import ResNet, ResNeXt  # noqa: E402

from mmattn.models.backbones import AttnResNet, AttnResNeXt  # noqa: E402
from mmattn.models.backbones.conv_slot import AttnConv2d  # noqa: E402
from mmattn.models.spatial import SimAM, SKConv  # noqa: E402
from mmattn.models.utils import DropInError, MissingKeyError  # noqa: E402
from tests.helpers import randomize_, requires_mmseg  # noqa: E402
from .drop_in import assert_same_init, assert_same_outputs  # noqa: E402

SK = dict(type='mmattn.SKConv')
SIMAM = dict(type='mmattn.AttnConv2d', attention=dict(type='mmattn.SimAM', e_lambda=0.1))
TIMM_BASIC_SK = dict(type='mmattn.SKConv', split_input=True, reduction=8, min_channels=16)


# -- unused: the original ----------------------------------------------------------------------
@pytest.mark.parametrize('slot', [dict(), dict(conv2_cfg=None, stage_with_conv2_cfg=None),
                                  dict(conv2_cfg=SK, stage_with_conv2_cfg=(False, ) * 4)],
                         ids=['absent', 'none', 'no-stage'])
@pytest.mark.parametrize('cls,ref_cls,kwargs', [
    (AttnResNet, ResNet, dict(depth=50)),
    (AttnResNet, ResNet, dict(depth=18, base_channels=16)),
    (AttnResNeXt, ResNeXt, dict(depth=50, groups=8, base_width=2, base_channels=16)),
], ids=['r50', 'r18', 'x50'])
def test_unused_slot_is_the_original(cls, ref_cls, kwargs, slot):
    ref, ours = ref_cls(**kwargs), cls(**kwargs, **slot)
    assert ([(k, v.shape) for k, v in ours.state_dict().items()]
            == [(k, v.shape) for k, v in ref.state_dict().items()])
    assert_same_init(ref, ours)
    assert_same_outputs(ref, ours, 4)


def test_signature_shows_the_slot_arguments():
    params = inspect.signature(AttnResNet).parameters
    for name in ('conv1_cfg', 'stage_with_conv1_cfg', 'conv2_cfg', 'stage_with_conv2_cfg'):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert params[name].default is None


# -- the authors' blocks, by hand --------------------------------------------------------------
def bn(x, norm, train):
    """A BatchNorm2d's formula on copies of its statistics (train: batch statistics)."""
    return F.batch_norm(x, norm.running_mean.clone(), norm.running_var.clone(), norm.weight,
                        norm.bias, train, norm.momentum, norm.eps)


def sk_unit(x, sk, train, dilation=1, split=False):
    """implus/SKNet's unit (timm's SelectiveKernel for ``split``): branch m = ReLU(BN(3x3 conv
    with dilation dilation * (m + 1))), U = sum, s = GAP(U), z = ReLU(BN(W_fc1 s)),
    a = softmax over branches of (W_fc2 z) viewed (M, C), out = sum_m a_m * branch_m."""
    m_branches = len(sk.branches)
    parts = x.chunk(m_branches, dim=1) if split else [x] * m_branches
    feats = []
    for m, (part, branch) in enumerate(zip(parts, sk.branches)):
        conv = branch.conv
        d = dilation * (m + 1)
        y = F.conv2d(part, conv.weight, None, conv.stride, d, d, conv.groups)
        feats.append(F.relu(bn(y, branch.bn, train)))
    u = torch.stack(feats).sum(0)
    s = u.mean((2, 3), keepdim=True)
    z = F.relu(bn(F.conv2d(s, sk.fc_reduce.conv.weight), sk.fc_reduce.bn, train))
    logits = F.conv2d(z, sk.fc_select.weight).view(x.shape[0], m_branches, -1, 1, 1)
    a = torch.softmax(logits, dim=1)
    return sum(a[:, m] * feats[m] for m in range(m_branches))


def simam(x, e_lambda):
    """ZjjConan/SimAM's module."""
    n = x.shape[2] * x.shape[3] - 1
    d = (x - x.mean(dim=[2, 3], keepdim=True)).pow(2)
    return x * torch.sigmoid(d / (4 * (d.sum(dim=[2, 3], keepdim=True) / n + e_lambda)) + 0.5)


def shortcut(blk, x, train):
    if blk.downsample is None:
        return x
    *pool, conv, norm = blk.downsample  # V1d: an average pool first
    for p in pool:
        x = p(x)
    return bn(conv(x), norm, train)


def sknet_bottleneck(blk, x, train):
    """SKNet-50's bottleneck: 1x1 + BN + ReLU, the SK unit (no BN after it), 1x1 + BN, sum,
    ReLU."""
    out = F.relu(bn(blk.conv1(x), blk.bn1, train))
    out = sk_unit(out, blk.conv2, train, dilation=blk.conv2.dilation)
    out = bn(blk.conv3(out), blk.bn3, train)
    return F.relu(out + shortcut(blk, x, train))


def simam_bottleneck(blk, x, train):
    """SimAM-ResNet's bottleneck: conv2 = Sequential(conv3x3, simam), then bn2 and ReLU."""
    out = F.relu(bn(blk.conv1(x), blk.bn1, train))
    c = blk.conv2
    out = simam(F.conv2d(out, c.weight, None, c.stride, c.padding, c.dilation, c.groups),
                c.attn.e_lambda)
    out = F.relu(bn(out, blk.bn2, train))
    out = bn(blk.conv3(out), blk.bn3, train)
    return F.relu(out + shortcut(blk, x, train))


def timm_sk_basic(blk, x, train):
    """timm's SelectiveKernelBasic: conv1 = the SK unit (input split between the paths), then
    conv2 3x3 + BN (no ReLU), sum, ReLU."""
    out = sk_unit(x, blk.conv1, train, split=True)
    out = bn(F.conv2d(out, blk.conv2.weight, None, 1, 1), blk.bn2, train)
    return F.relu(out + shortcut(blk, x, train))


def simam_basic(blk, x, train):
    out = F.relu(bn(blk.conv1(x), blk.bn1, train))
    c = blk.conv2
    out = bn(simam(F.conv2d(out, c.weight, None, 1, 1), c.attn.e_lambda), blk.bn2, train)
    return F.relu(out + shortcut(blk, x, train))


def block_inputs(net, stage, x):
    """The input of ``layer{stage}`` for a network input ``x`` (eval mode)."""
    with torch.no_grad():
        y = net.maxpool(net.relu(net.norm1(net.conv1(x)))) if not net.deep_stem else \
            net.maxpool(net.stem(x))
        for i in range(1, stage):
            y = getattr(net, f'layer{i}')(y)
    return y


AUTHORS_BLOCKS = {
    'sknet-50': (AttnResNeXt, dict(depth=50, groups=8, base_width=2, base_channels=16,
                                   conv2_cfg=SK), sknet_bottleneck),
    'simam-r50': (AttnResNet, dict(depth=50, base_channels=16, conv2_cfg=SIMAM),
                  simam_bottleneck),
    'skresnet18': (AttnResNet, dict(depth=18, base_channels=16, conv1_cfg=TIMM_BASIC_SK),
                   timm_sk_basic),
    'simam-r18': (AttnResNet, dict(depth=18, base_channels=16, conv2_cfg=SIMAM), simam_basic),
}


@pytest.mark.parametrize('name', list(AUTHORS_BLOCKS))
def test_slot_computes_the_authors_block(name):
    cls, kwargs, authors = AUTHORS_BLOCKS[name]
    torch.manual_seed(0)
    net = randomize_(cls(**kwargs, norm_eval=False).double(), seed=1, scale=0.5)
    net.eval()
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    for stage in (1, 2, 4):
        blk = getattr(net, f'layer{stage}')[0]  # stage 2 and 4: strided, with a shortcut
        y = block_inputs(net, stage, x)
        for train in (False, True):
            state = {k: v.clone() for k, v in blk.state_dict().items()}
            blk.train(train)
            with torch.no_grad():
                expected = authors(blk, y, train)
                actual = blk(y)
            blk.load_state_dict(state)
            torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12,
                                       msg=f'{name}, layer{stage}.0, train={train}')


def test_sk_blocks_have_no_norm_after_the_unit():
    net = AttnResNeXt(depth=50, groups=8, base_width=2, base_channels=16, conv2_cfg=SK)
    keys = list(net.state_dict())
    assert not any('.bn2.' in k for k in keys) and 'layer1.0.conv2.fc_select.weight' in keys
    # in place of conv2, in its place in the state dict
    block = [k.split('.')[2] for k in keys if k.startswith('layer1.0.')]
    assert block.index('conv1') < block.index('bn1') < block.index('conv2') \
        < block.index('conv3')
    r18 = AttnResNet(depth=18, conv1_cfg=TIMM_BASIC_SK)
    assert not any('.bn1.' in k for k in r18.state_dict()) and 'bn1.weight' in r18.state_dict()


def test_simam_slot_keeps_the_plain_keys():
    """AttnConv2d is the conv: a plain ResNet's weights load strictly, conv2.weight included."""
    plain = AttnResNet(depth=50, base_channels=16)
    ours = AttnResNet(depth=50, base_channels=16, conv2_cfg=SIMAM)
    assert list(ours.state_dict()) == list(plain.state_dict())
    ours.load_state_dict(plain.state_dict(), strict=True)
    assert isinstance(ours.layer3[1].conv2, AttnConv2d)
    assert isinstance(ours.layer3[1].conv2.attn, SimAM)


# -- the replaced conv's arguments -------------------------------------------------------------
def _sk_args(layer):
    return dict(in_channels=layer.in_channels, out_channels=layer.out_channels,
                stride=layer.stride, dilation=layer.dilation,
                groups=tuple(b.conv.groups for b in layer.branches),
                branch_dilations=tuple(b.conv.dilation[0] for b in layer.branches))


def test_layer_gets_the_block_arguments():
    net = AttnResNeXt(depth=50, groups=8, base_width=2, base_channels=16, conv2_cfg=SK,
                      stage_with_conv2_cfg=(False, True, False, True),
                      strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2))
    assert not isinstance(net.layer1[0].conv2, SKConv)
    assert not isinstance(net.layer3[0].conv2, SKConv)
    assert _sk_args(net.layer2[0].conv2) == dict(in_channels=32, out_channels=32, stride=2,
                                                 dilation=1, groups=(8, 8),
                                                 branch_dilations=(1, 2))
    assert _sk_args(net.layer2[1].conv2)['stride'] == 1
    assert _sk_args(net.layer4[0].conv2) == dict(in_channels=128, out_channels=128, stride=1,
                                                 dilation=2, groups=(8, 8),
                                                 branch_dilations=(2, 4))
    caffe = AttnResNet(depth=50, base_channels=16, style='caffe', conv2_cfg=SK)
    assert caffe.layer2[0].conv2.stride == 1 and caffe.layer2[0].conv1.stride == (2, 2)


def test_backbone_norm_cfg_reaches_the_layer():
    net = AttnResNet(depth=50, base_channels=16, conv2_cfg=SK,
                     norm_cfg=dict(type='GN', num_groups=4, requires_grad=True))
    assert isinstance(net.layer1[0].conv2.branches[0].bn, torch.nn.GroupNorm)
    own = AttnResNet(depth=50, base_channels=16, norm_cfg=dict(type='GN', num_groups=4),
                     conv2_cfg=dict(SK, norm_cfg=dict(type='BN')))
    assert isinstance(own.layer1[0].conv2.branches[0].bn, torch.nn.BatchNorm2d)


@requires_mmseg
@pytest.mark.parametrize('backbone', ['AttnResNetV1b', 'AttnResNetV1c', 'AttnResNetV1d'])
def test_segmentation_backbones_dilated_stages(backbone):
    from mmattn.registry import MODELS
    net = MODELS.build(dict(type=f'mmattn.{backbone}', depth=50, base_channels=16,
                            strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4),
                            contract_dilation=True, conv2_cfg=SK, norm_cfg=dict(type='BN')))
    # mmseg's contract_dilation: a dilated stage's first block at half the dilation
    assert net.layer3[0].conv2.dilation == 1 and net.layer3[1].conv2.dilation == 2
    assert [b.conv.dilation[0] for b in net.layer4[1].conv2.branches] == [4, 8]
    net.train()
    outs = net(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape[1:]) for o in outs] == [(64, 16, 16), (128, 8, 8), (256, 8, 8),
                                                   (512, 8, 8)]
    # and SimAM's slot computes the authors' block there too
    ref = MODELS.build(dict(type=f'mmattn.{backbone}', depth=50, base_channels=16,
                            conv2_cfg=SIMAM, norm_cfg=dict(type='BN'))).double()
    randomize_(ref, seed=2).eval()
    y = block_inputs(ref, 2, torch.randn(1, 3, 64, 64, dtype=torch.float64))
    with torch.no_grad():
        torch.testing.assert_close(ref.layer2[0](y), simam_bottleneck(ref.layer2[0], y, False),
                                   rtol=1e-12, atol=1e-12)


# -- training: frozen stages, norm_eval, with_cp, init ------------------------------------------
@pytest.mark.parametrize('freeze_plugins', [False, True])
def test_frozen_stages_leave_the_slot_attention_training(freeze_plugins):
    net = AttnResNeXt(depth=50, groups=8, base_width=2, base_channels=16, conv2_cfg=SK,
                      frozen_stages=1, freeze_plugins=freeze_plugins)
    net.train()
    for blk in net.layer1:
        assert all(p.requires_grad is not freeze_plugins for p in blk.conv2.parameters())
        assert blk.conv2.training is not freeze_plugins
        assert not any(p.requires_grad for p in blk.conv1.parameters())
        assert not any(p.requires_grad for p in blk.bn3.parameters())
    assert all(p.requires_grad for p in net.layer2.parameters())
    assert net.stage_attention_modules(1) == [blk.conv2 for blk in net.layer1]
    simam_net = AttnResNet(depth=50, base_channels=16, conv2_cfg=SIMAM, frozen_stages=1)
    simam_net.train()
    # the conv is the ResNet's own, frozen with its stage; SimAM has no parameters
    assert not simam_net.layer1[0].conv2.weight.requires_grad
    assert simam_net.stage_attention_modules(1) == [b.conv2.attn for b in simam_net.layer1]


def test_norm_eval_covers_the_layer_norms():
    net = AttnResNeXt(depth=50, groups=8, base_width=2, base_channels=16, conv2_cfg=SK,
                      norm_eval=True)
    net.train()
    assert not net.layer2[0].conv2.branches[0].bn.training
    assert not net.layer2[0].conv2.fc_reduce.bn.training


@pytest.mark.parametrize('cls,kwargs', [
    (AttnResNeXt, dict(depth=50, groups=8, base_width=2, conv2_cfg=SK)),
    (AttnResNet, dict(depth=18, conv1_cfg=TIMM_BASIC_SK)),
    (AttnResNet, dict(depth=18, conv2_cfg=SK)),
])
def test_with_cp_same_outputs_and_gradients(cls, kwargs):
    torch.manual_seed(0)
    net = randomize_(cls(base_channels=16, norm_eval=False, **kwargs).double(), seed=3)
    cp_net = cls(base_channels=16, norm_eval=False, with_cp=True, **kwargs).double()
    cp_net.load_state_dict(net.state_dict())
    x = torch.randn(2, 3, 48, 48, dtype=torch.float64)
    grads = []
    for model in (net, cp_net):
        model.train()
        xi = x.clone().requires_grad_()
        sum(o.sum() for o in model(xi)).backward()
        grads.append((xi.grad, [p.grad for p in model.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b)


def test_init_weights_with_the_layer_in_place_of_a_zero_initialised_norm():
    """mmdet's zero_init_residual zero-initialises a BasicBlock's bn2: where SKConv takes bn2's
    place (conv2 of a BasicBlock) there is none, and the init runs; SKConv keeps its authors'
    init (fuse and select convs from N(0, 0.01)) after the backbone's Kaiming init."""
    net = AttnResNet(depth=18, conv2_cfg=SK)
    torch.manual_seed(0)
    net.init_weights()
    sk = net.layer3[1].conv2
    assert not hasattr(net.layer3[1], 'bn2') and net.layer3[1].init_cfg is None
    for w in (sk.fc_reduce.conv.weight, sk.fc_select.weight):
        assert 0.005 < w.std().item() < 0.015
    # the branch convs: the backbone's Kaiming init (fan out: 256 channels x 3 x 3)
    assert abs(sk.branches[0].conv.weight.std().item() / (2 / (256 * 9)) ** 0.5 - 1) < 0.05
    for b in sk.branches:
        assert torch.all(b.bn.weight == 1) and torch.all(b.bn.bias == 0)
    # timm's layout keeps bn2, zero-initialised as in mmdet
    timm_r18 = AttnResNet(depth=18, conv1_cfg=TIMM_BASIC_SK)
    timm_r18.init_weights()
    assert torch.all(timm_r18.layer1[0].bn2.weight == 0)


# -- bad input ---------------------------------------------------------------------------------
def _no_build(monkeypatch, cls):
    """Make building the stem fail: a refusal must come before anything is built."""

    def stem(*args, **kwargs):
        raise AssertionError('the stem was built before the refusal')

    monkeypatch.setattr(cls, '_make_stem_layer', stem)


@pytest.mark.parametrize('kwargs,error,words', [
    (dict(conv2_cfg=SK, stage_with_conv2_cfg=(True, True, True)), DropInError,
     'stage_with_conv2_cfg must have one bool per stage (4 stages), got (True, True, True)'),
    (dict(conv2_cfg=SK, stage_with_conv2_cfg='all'), DropInError, 'one bool per stage'),
    (dict(conv2_cfg=SK, stage_with_conv2_cfg=(True, 2, True, True)), DropInError,
     'must hold bools'),
    (dict(stage_with_conv2_cfg=(True, ) * 4), DropInError,
     'stage_with_conv2_cfg=(True, True, True, True) is given without conv2_cfg'),
    (dict(conv2_cfg=dict(type='mmattn.SKConvv')), DropInError,
     "'SKConvv' is not a module of the 'mmattn' scope. Did you mean mmattn.SKConv"),
    (dict(conv2_cfg=dict(type='NoSuchConv')), DropInError,
     "'NoSuchConv' is not a module of the 'mmattn' scope"),
    (dict(conv2_cfg=dict(type='mmdet.NoSuchConv')), DropInError,
     "'mmdet.NoSuchConv' is not registered"),
    (dict(conv2_cfg=dict(type='mmattn.SE')), DropInError,
     "SE is not conv-like: it is an attention module (in_channels in, the same shape out), "
     "which takes no out_channels, kernel_size, stride, padding, dilation, groups, bias; put "
     "it after a conv with dict(type='mmattn.AttnConv2d', attention=dict(type='mmattn.SE'))"),
    (dict(conv2_cfg=dict(type='BN')), DropInError,
     'is not conv-like: its constructor takes no in_channels, out_channels, kernel_size'),
    (dict(conv2_cfg=dict(type='mmattn.SKConv', branchs=3)), DropInError,
     'SKConv takes no argument branchs (besides the conv\'s arguments it takes: '
     'num_branches, reduction'),
    (dict(conv2_cfg=dict(type='mmattn.SKConv', stride=2)), DropInError,
     "['stride'] come from the conv the layer replaces"),
    (dict(conv2_cfg=['mmattn.SKConv']), DropInError, 'conv2_cfg must be a dict with a "type"'),
    (dict(conv2_cfg=dict(num_branches=2)), MissingKeyError, 'conv2_cfg needs a "type"'),
    (dict(conv1_cfg=SK), DropInError,
     "a Bottleneck's conv1 is a 1x1 conv; conv1_cfg replaces the first 3x3 conv of a "
     "BasicBlock"),
    (dict(conv2_cfg=SK, dcn=dict(type='DCN', deform_groups=1),
          stage_with_dcn=(False, True, True, True)), DropInError,
     'dcn replaces conv2 in stages [1, 2, 3] too'),
])
def test_bad_slot_refused_before_anything_is_built(kwargs, error, words, monkeypatch):
    _no_build(monkeypatch, ResNet)
    with pytest.raises(error) as info:
        AttnResNet(depth=50, **kwargs)
    assert str(info.value).startswith('AttnResNet: ')
    assert words in str(info.value), str(info.value)


def test_argument_the_layer_refuses_names_the_block():
    with pytest.raises(ValueError, match=r'AttnResNet: conv2_cfg, layer1\.0\.conv2: '
                       r'SKConv\(in_channels=16, .*refused its arguments: SKConv: '
                       r'num_branches must be a positive int, got 0'):
        AttnResNet(depth=50, base_channels=16, conv2_cfg=dict(SK, num_branches=0))
    with pytest.raises(ValueError, match='split_input needs in_channels'):
        AttnResNet(depth=50, base_channels=16, conv2_cfg=dict(SK, split_input=True,
                                                              num_branches=3))


def test_bad_attention_in_attn_conv2d():
    with pytest.raises(DropInError, match=r'AttnResNet: conv2_cfg: AttnConv2d needs attention '
                       'in its config'):
        AttnResNet(depth=50, conv2_cfg=dict(type='mmattn.AttnConv2d'))
    with pytest.raises(ValueError, match='AttnConv2d: attention must be an attention module'):
        AttnConv2d(8, 8, 3, attention=None)
    with pytest.raises(ValueError, match='keeps its input\'s shape'):
        AttnConv2d(8, 8, 3, attention=dict(type='mmattn.SKConv'))
    with pytest.raises(ValueError, match="'SimAMm' is not a module of the 'mmattn' scope"):
        AttnConv2d(8, 8, 3, attention=dict(type='mmattn.SimAMm'))


@requires_mmseg
def test_segmentation_backbone_refuses_too(monkeypatch):
    from mmseg.models.backbones import ResNet as SegResNet

    from mmattn.models.backbones import AttnResNetV1c
    _no_build(monkeypatch, SegResNet)
    with pytest.raises(DropInError, match='AttnResNetV1c: stage_with_conv2_cfg must have one '
                       r'bool per stage \(3 stages\)'):
        AttnResNetV1c(depth=50, num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1),
                      out_indices=(0, 1, 2), conv2_cfg=SK,
                      stage_with_conv2_cfg=(True, ) * 4)
