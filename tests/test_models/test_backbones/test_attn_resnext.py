"""AttnResNeXt: mmdet's ResNeXt without plugins; plugins at the grouped width; maxpool_cfg."""
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip('mmdet.models', reason='AttnResNeXt needs mmdet (with mmcv ops)')
from mmdet.models.backbones import ResNeXt  # noqa: E402
from mmdet.registry import MODELS as MMDET_MODELS  # noqa: E402

from mmattn.models.backbones import AttnResNet, AttnResNeXt  # noqa: E402
from mmattn.models.channel import SE  # noqa: E402
from tests.helpers import assert_close, randomize_  # noqa: E402
from .drop_in import assert_same_init, assert_same_outputs  # noqa: E402
from .freezing import check_frozen_stages  # noqa: E402
from .toy_plugins import Affine, ZeroGammaNorm  # noqa: E402


def blocks_of(net):
    return [(i, j, b) for i in range(net.num_stages)
            for j, b in enumerate(getattr(net, f'layer{i + 1}'))]


@pytest.mark.parametrize('kwargs', [
    dict(depth=50, groups=32, base_width=4),
    dict(depth=50, groups=8, base_width=2, base_channels=16, deep_stem=True, avg_down=True,
         frozen_stages=2, norm_eval=False),
    dict(depth=101, groups=4, base_width=4, base_channels=8, style='caffe',
         strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2), out_indices=(1, 3)),
], ids=['x50-32x4d', 'x50-v1d-frozen', 'x101-caffe-dilated'])
def test_same_as_mmdet_resnext_without_plugins(kwargs):
    ref, ours = ResNeXt(**kwargs), AttnResNeXt(**kwargs)

    assert ([(k, v.shape) for k, v in ours.state_dict().items()]
            == [(k, v.shape) for k, v in ref.state_dict().items()])
    assert ([(k, p.requires_grad) for k, p in ours.named_parameters()]
            == [(k, p.requires_grad) for k, p in ref.named_parameters()])
    assert ([(k, m.training) for k, m in ours.named_modules()]
            == [(k, m.training) for k, m in ref.named_modules()])
    # the grouped 3x3 convs are there: groups and width as mmdet builds them
    conv2 = ours.layer1[0].conv2
    assert conv2.groups == kwargs['groups']

    assert_same_init(ref, ours)

    assert_same_outputs(ref, ours, len(kwargs.get('out_indices', range(4))))


@pytest.mark.parametrize('norm_eval', [False, True])
@pytest.mark.parametrize('freeze_plugins', [False, True])
def test_frozen_stages_and_their_attention_modules(freeze_plugins, norm_eval):
    kwargs = dict(depth=50, groups=4, base_width=4, base_channels=8, frozen_stages=2,
                  norm_eval=norm_eval)
    net = AttnResNeXt(**kwargs, freeze_plugins=freeze_plugins,
                      plugins=[dict(cfg=dict(type=ZeroGammaNorm), position='after_conv2')],
                      stage_plugins=[dict(cfg=dict(type=ZeroGammaNorm))])
    check_frozen_stages(net, ResNeXt(**kwargs), 2, freeze_plugins)


def test_plugins_get_the_grouped_width_and_run_where_documented():
    """after_conv1/2 plugins see the grouped width, after_conv3 the block's output width; SE
    after conv3 scales the residual branch before the addition."""
    plugins = [dict(cfg=dict(type=Affine), position='after_conv1'),
               dict(cfg=dict(type=Affine, postfix='_2'), position='after_conv2'),
               dict(cfg=dict(type='mmattn.SE', reduction=4), position='after_conv3')]
    net = AttnResNeXt(depth=50, groups=4, base_width=4, base_channels=16, plugins=plugins,
                      norm_eval=False)
    randomize_(net).double().eval()
    for i, j, b in blocks_of(net):
        width = 4 * 4 * 2**i  # groups * floor(planes * base_width / base_channels)
        assert b.conv1.out_channels == b.affine.in_channels == width
        assert b.affine_2.in_channels == width
        assert isinstance(b.se, SE) and b.se.in_channels == 64 * 2**i

    # one block by hand, in float64
    b = net.layer2[0]
    x = torch.randn(2, 64, 12, 10, dtype=torch.float64)

    def bn(m, t):
        return F.batch_norm(t, m.running_mean, m.running_var, m.weight, m.bias, False, 0., m.eps)

    def affine(m, t):
        return t * m.weight[:, None, None] + m.bias[:, None, None]

    out = affine(b.affine, F.relu(bn(b.norm1, F.conv2d(x, b.conv1.weight))))
    out = affine(b.affine_2, F.relu(bn(b.norm2, F.conv2d(out, b.conv2.weight, stride=2,
                                                        padding=1, groups=4))))
    out = bn(b.norm3, F.conv2d(out, b.conv3.weight))
    se = b.se
    g = torch.sigmoid(F.conv2d(F.relu(F.conv2d(out.mean((2, 3), keepdim=True), se.fc1.weight,
                                               se.fc1.bias)), se.fc2.weight, se.fc2.bias))
    shortcut = bn(b.downsample[1], F.conv2d(x, b.downsample[0].weight, stride=2))
    with torch.no_grad():
        assert_close(b(x), F.relu(out * g + shortcut), rtol=1e-12, atol=1e-12)


def test_built_from_mmdet_registry():
    cfg = dict(type='mmattn.AttnResNeXt', depth=50, groups=32, base_width=4, base_channels=16,
               plugins=[dict(cfg=dict(type='mmattn.SE', reduction=16), position='after_conv3')])
    net = MMDET_MODELS.build(cfg)
    assert isinstance(net, AttnResNeXt)
    outs = net(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [64, 128, 256, 512]


@pytest.mark.parametrize('cls,kwargs', [(AttnResNet, dict(depth=18)),
                                        (AttnResNeXt, dict(depth=50, groups=4))])
def test_maxpool_cfg_sets_the_stem_pool(cls, kwargs):
    """``maxpool_cfg=dict(padding=0, ceil_mode=True)`` pools as Caffe's ResNets (windows
    shifted by one pixel; the same size on even maps, one less on odd ones); the state dict is
    unchanged."""
    plain = cls(base_channels=8, **kwargs)
    caffe = cls(base_channels=8, maxpool_cfg=dict(padding=0, ceil_mode=True), **kwargs)
    assert list(plain.state_dict()) == list(caffe.state_dict())
    randomize_(plain).double().eval()
    caffe.load_state_dict(plain.state_dict())
    caffe.double().eval()
    x = torch.randn(1, 3, 45, 37, dtype=torch.float64)
    stem = F.relu(plain.norm1(plain.conv1(x)))
    pooled = F.max_pool2d(stem, 3, 2, padding=0, ceil_mode=True)
    with torch.no_grad():
        assert_close(caffe.layer1(pooled), caffe(x)[0], rtol=1e-12, atol=1e-12)
        assert pooled.shape[2:] == (11, 9)
        assert F.max_pool2d(stem, 3, 2, padding=1).shape[2:] == (12, 10)
        even = F.relu(plain.norm1(plain.conv1(x[..., :44, :36])))
        assert (F.max_pool2d(even, 3, 2, padding=0, ceil_mode=True).shape
                == F.max_pool2d(even, 3, 2, padding=1).shape)
        xe = x[..., :44, :36]
        assert not torch.allclose(plain(xe)[0], caffe(xe)[0])


def test_bad_maxpool_cfg_is_named():
    with pytest.raises(ValueError, match=r"AttnResNeXt: maxpool_cfg takes .* unknown keys "
                       r"\['dilation'\]"):
        AttnResNeXt(depth=50, groups=4, maxpool_cfg=dict(dilation=2))
    with pytest.raises(TypeError, match='AttnResNet: maxpool_cfg must be a dict'):
        AttnResNet(depth=18, maxpool_cfg=3)
