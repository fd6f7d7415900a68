"""tools/model_converters: released-checkpoint layouts -> our backbones, exactly.

The source networks are re-implemented here in plain PyTorch from their code's description
(timm ``timm/models/resnet.py`` with ``attn_layer='se'``; Cadene ``pretrainedmodels``
``senet.py``), independently of the converters and of mmdet: their state dicts have the
source's keys. Each test gives a source network random weights (float64), converts its state
dict with the command's own code, loads the file into our backbone through mmengine's
``Pretrained`` init, and compares every stage's output with the source network's, in eval and
in training mode (batch statistics), to 1e-10. Narrow widths (``base_channels=16``) keep it
fast; the layouts are those of the released networks.
"""
import importlib
import os.path as osp
import sys
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.helpers import randomize_

pytest.importorskip('mmdet.models', reason='the converted backbones need mmdet')

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))
convert_tool = importlib.import_module('model_converters.convert')
common = importlib.import_module('model_converters.common')
FORMATS = importlib.import_module('model_converters.formats').FORMATS

TOL = dict(rtol=1e-10, atol=1e-10)

# ---------------------------------------------------------------------------------------------
# the source networks


class RefSE(nn.Module):
    """GAP -> 1x1 conv (bias) -> ReLU -> 1x1 conv (bias) -> sigmoid -> x * g."""

    def __init__(self, channels, reduced):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.fc2 = nn.Conv2d(reduced, channels, 1)

    def forward(self, x):
        g = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * g


def reduced_width(channels, reduction):
    """SE's hidden width. ``reduction='timm'``: timm's ``make_divisible(C / 16, 8)`` (at
    least 8, rounded to a multiple of 8), the released networks' rule; an int r: ``C // r``,
    which equals it from 128 channels up, and keeps the narrow test networks' SE narrow."""
    if reduction == 'timm':
        return max(8, int(channels / 16 + 4) // 8 * 8)
    return channels // reduction


class RefBottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, width, stride, groups, stride_in_1x1, se_name,
                 reduction, downsample, aa=False):
        super().__init__()
        s1, s2 = (stride, 1) if stride_in_1x1 else (1, stride)
        # timm's aa_layer=AvgPool2d: the 3x3 conv at stride 1, then a 2x2 average pool (no
        # tensors, so the state dict is the plain block's)
        self.aa = nn.AvgPool2d(2) if aa and s2 == 2 else nn.Identity()
        s2 = 1 if aa else s2
        self.conv1 = nn.Conv2d(inplanes, width, 1, stride=s1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=s2, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.se_name = se_name
        self.add_module(se_name, RefSE(planes * 4, reduced_width(planes * 4, reduction)))
        self.downsample = downsample

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.aa(torch.relu(self.bn2(self.conv2(out))))
        out = getattr(self, self.se_name)(self.bn3(self.conv3(out)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + shortcut)


class RefBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, width, stride, groups, stride_in_1x1, se_name,
                 reduction, downsample, aa=False):
        super().__init__()
        assert not aa
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se_name = se_name
        self.add_module(se_name, RefSE(planes, reduced_width(planes, reduction)))
        self.downsample = downsample

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = getattr(self, self.se_name)(self.bn2(self.conv2(out)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + shortcut)


class RefSENet(nn.Module):
    """An SE-ResNet/ResNeXt in timm's or Cadene's layout, returning the four stage outputs.

    ``layout='timm'``: stem ``conv1``/``bn1`` (or a deep stem ``conv1.0/1/3/4/6`` + ``bn1``),
    ``MaxPool2d(3, 2, padding=1)``, blocks' ``se``, head ``fc``; with ``avg_down`` the
    downsample is (pool, conv, bn). ``layout='cadene'``: stem ``layer0.conv1/bn1`` and
    ``MaxPool2d(3, 2, ceil_mode=True)`` without padding, blocks' ``se_module``, head
    ``last_linear``. ResNeXt width: ``floor(planes * base_width / base) * groups``.
    ``aa``: timm's anti-aliased nets (``seresnetaa50d``, ``seresnextaa101d_32x8d``:
    ``aa_layer=nn.AvgPool2d``): a 2x2 average pool after each stride-1 3x3 conv that would have
    stride 2, and in place of the stem max-pool; the same tensors as without.
    """

    def __init__(self, layout, blocks, bottleneck=True, base=16, groups=1, base_width=4,
                 deep=False, stride_in_1x1=False, reduction=16, aa=False):
        super().__init__()
        self.layout = layout
        stem = [('conv1', nn.Conv2d(3, base, 7, stride=2, padding=3, bias=False)),
                ('bn1', nn.BatchNorm2d(base))]
        if layout == 'cadene':
            self.layer0 = nn.Sequential(OrderedDict(
                stem + [('relu1', nn.ReLU()), ('pool', nn.MaxPool2d(3, stride=2,
                                                                    ceil_mode=True))]))
        else:
            if deep:
                self.conv1 = nn.Sequential(
                    nn.Conv2d(3, base // 2, 3, stride=2, padding=1, bias=False),
                    nn.BatchNorm2d(base // 2), nn.ReLU(),
                    nn.Conv2d(base // 2, base // 2, 3, padding=1, bias=False),
                    nn.BatchNorm2d(base // 2), nn.ReLU(),
                    nn.Conv2d(base // 2, base, 3, padding=1, bias=False))
            else:
                self.conv1 = stem[0][1]
            self.bn1 = stem[1][1]
            self.maxpool = nn.AvgPool2d(2) if aa else nn.MaxPool2d(3, stride=2, padding=1)
        block = RefBottleneck if bottleneck else RefBasicBlock
        se_name = 'se_module' if layout == 'cadene' else 'se'
        inplanes = base
        for i, n in enumerate(blocks):
            planes = base * 2**i
            width = planes if groups == 1 else planes * base_width // base * groups
            layer = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                down = None
                if j == 0 and (stride != 1 or inplanes != planes * block.expansion):
                    conv = nn.Conv2d(inplanes, planes * block.expansion, 1,
                                     stride=1 if deep else stride, bias=False)
                    bn = nn.BatchNorm2d(planes * block.expansion)
                    if deep:  # timm's avg_down: pool (identity at stride 1), conv, bn
                        pool = (nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False)
                                if stride > 1 else nn.Identity())
                        down = nn.Sequential(pool, conv, bn)
                    else:
                        down = nn.Sequential(conv, bn)
                layer.append(block(inplanes, planes, width, stride, groups, stride_in_1x1,
                                   se_name, reduction, down, aa))
                inplanes = planes * block.expansion
            self.add_module(f'layer{i + 1}', nn.Sequential(*layer))
        head = nn.Linear(inplanes, 10)
        self.add_module('last_linear' if layout == 'cadene' else 'fc', head)

    def forward(self, x):
        if self.layout == 'cadene':
            x = self.layer0(x)
        else:
            x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        outs = []
        for i in range(1, 5):
            x = getattr(self, f'layer{i}')(x)
            outs.append(x)
        return outs


R50, R18 = (3, 4, 6, 3), (2, 2, 2, 2)
SMALL = dict(base_channels=16)
# (format, depth, source network, backbone overrides); ResNeXts at base_width 1 over
# base_channels 16: the real networks' group widths scaled down with the planes
CASES = {
    'timm-se-r50': ('timm-se', 50, dict(layout='timm', blocks=R50), SMALL),
    # full width: timm's SE rule gives stage 1 (64 channels) 8, not 64 // 16
    'timm-se-r18': ('timm-se', 18, dict(layout='timm', blocks=R18, bottleneck=False, base=64,
                                        reduction='timm'), {}),
    'timm-se-d-r50': ('timm-se-d', 50, dict(layout='timm', blocks=R50, deep=True), SMALL),
    'timm-se-x50-32x1': ('timm-se-x32x4d', 50, dict(layout='timm', blocks=R50, groups=32,
                                                    base_width=1),
                         dict(SMALL, base_width=1)),
    'timm-se-xd-50': ('timm-se-xd-32x8d', 50, dict(layout='timm', blocks=R50, groups=8,
                                                   base_width=2, deep=True),
                      dict(SMALL, groups=8, base_width=2)),
    'cadene-se-r50': ('cadene-se', 50, dict(layout='cadene', blocks=R50, stride_in_1x1=True),
                      SMALL),
    'cadene-se-x50': ('cadene-se-x32x4d', 50, dict(layout='cadene', blocks=R50, groups=32,
                                                   base_width=1),
                      dict(SMALL, base_width=1)),
}


def source_state(ref, cadene=False):
    state = OrderedDict((k, v.clone()) for k, v in ref.state_dict().items())
    if cadene:  # the released files were saved before BN counted its batches
        state = OrderedDict((k, v) for k, v in state.items()
                            if not k.endswith('num_batches_tracked'))
    return state


def make_source(spec, seed=0):
    torch.manual_seed(seed)
    ref = RefSENet(**spec).double()
    randomize_(ref, seed=seed)
    return ref


def build_ours(cfg, checkpoint=None, **extra):
    cfg = dict(cfg, **extra)
    if checkpoint is not None:
        cfg['init_cfg'] = dict(type='Pretrained', checkpoint=checkpoint)
    import mmattn.models  # noqa: F401
    from mmattn.registry import MODELS
    return MODELS.build(cfg)


def converted_backbone(case, tmp_path, ref=None, save=None):
    name, depth, spec, overrides = CASES[case]
    ref = ref or make_source(spec)
    src = source_state(ref, cadene=spec['layout'] == 'cadene')
    src_path, dst_path = str(tmp_path / 'src.pth'), str(tmp_path / 'dst.pth')
    torch.save(save(src) if save else src, src_path)
    cfg = convert_tool.convert(name, src_path, dst_path, overrides=overrides)
    net = build_ours(cfg, dst_path, norm_eval=False).double()
    net.init_weights()
    return ref, src, net, dst_path, cfg


@pytest.mark.parametrize('case', list(CASES))
def test_converted_backbone_equals_source_network(case, tmp_path):
    ref, src, net, dst_path, cfg = converted_backbone(case, tmp_path)
    # mmengine's Pretrained init filled every tensor with the converted one, which loads
    # strictly too
    dst = torch.load(dst_path, weights_only=True)['state_dict']
    assert list(dst) == list(net.state_dict())
    for k, v in net.state_dict().items():
        assert torch.equal(v, dst[k].to(v.dtype)), k
    build_ours(cfg).double().load_state_dict(dst, strict=True)

    x = torch.randn(2, 3, 45, 37, dtype=torch.float64)
    for train in (False, True):
        ref.train(train)
        net.train(train)
        with torch.no_grad():
            expected, outs = ref(x), net(x)
        assert len(outs) == 4
        for i, (a, b) in enumerate(zip(expected, outs)):
            torch.testing.assert_close(b, a, **TOL, msg=f'{case} stage {i + 1} train={train}')
    # training mode updated the same running statistics
    ours = net.state_dict()
    for k, v in ref.state_dict().items():
        if k.endswith(('running_mean', 'running_var')):
            torch.testing.assert_close(ours[key_table(case)[k]], v, **TOL)


_KEY_TABLES = {}


def key_table(case):
    """source key -> our key, as the format maps them: each source tensor is tagged with its
    own number and followed through the conversion."""
    if case not in _KEY_TABLES:
        name, depth, spec, _ = CASES[case]
        src = source_state(make_source(spec), cadene=spec['layout'] == 'cadene')
        keys = list(src)
        tagged = OrderedDict((k, torch.full((1, ), float(i))) for i, k in enumerate(keys))
        dst, _ = FORMATS[name].convert(tagged, depth)
        _KEY_TABLES[case] = {keys[int(v)]: dk for dk, v in dst.items()
                             if v.is_floating_point()}
    return _KEY_TABLES[case]


@pytest.mark.parametrize('case', ['timm-se-d-r50', 'cadene-se-r50', 'cadene-se-x50'])
def test_every_source_tensor_used_exactly_once(case):
    name, depth, spec, _ = CASES[case]
    src = source_state(make_source(spec), cadene=spec['layout'] == 'cadene')
    dst, report = FORMATS[name].convert(src, depth)
    # each converted tensor is one source tensor, unchanged (SE: the same 1x1 convs), and no
    # source tensor feeds two
    owners = {}
    for dk, v in dst.items():
        hits = [k for k, s in src.items() if s is v]
        if dk.endswith('num_batches_tracked') and not hits:
            continue
        assert len(hits) == 1, dk
        assert hits[0] not in owners, (hits[0], owners.get(hits[0]), dk)
        owners[hits[0]] = dk
    dropped = {k for k, _ in report.dropped}
    assert dropped == {k for k in src if k.startswith(('fc.', 'last_linear.'))}
    assert set(owners) | dropped == set(src)
    assert sum(report.counts.values()) == len(owners)
    n_blocks = sum(spec['blocks'])
    assert report.counts['se'] == 4 * n_blocks
    filled = {k for k, _ in report.filled}
    if spec['layout'] == 'cadene':
        # every BN's counter, absent from the file, is written as 0
        assert filled == {k for k in dst if k.endswith('num_batches_tracked')}
        assert all(int(dst[k]) == 0 for k in filled)
    else:
        assert not filled


def test_source_keys_map_where_documented():
    table = key_table('cadene-se-r50')
    assert table['layer0.conv1.weight'] == 'conv1.weight'
    assert table['layer0.bn1.running_var'] == 'bn1.running_var'
    assert table['layer2.0.se_module.fc2.bias'] == 'layer2.0.se.fc2.bias'
    assert table['layer3.0.downsample.1.weight'] == 'layer3.0.downsample.1.weight'
    table = key_table('timm-se-d-r50')
    assert table['conv1.3.weight'] == 'stem.3.weight'
    assert table['conv1.4.running_mean'] == 'stem.4.running_mean'
    assert table['bn1.weight'] == 'stem.7.weight'
    assert table['layer2.0.downsample.1.weight'] == 'layer2.0.downsample.1.weight'
    assert table['layer2.0.downsample.2.running_var'] == 'layer2.0.downsample.2.running_var'


def test_cadene_needs_its_caffe_max_pool(tmp_path):
    """Without ``maxpool_cfg`` the same weights give other outputs: the stem pool matters."""
    ref, _, net, dst_path, cfg = converted_backbone('cadene-se-r50', tmp_path)
    assert cfg['maxpool_cfg'] == dict(padding=0, ceil_mode=True) and cfg['style'] == 'caffe'
    plain = build_ours({k: v for k, v in cfg.items() if k != 'maxpool_cfg'}, dst_path,
                       norm_eval=False).double()
    plain.init_weights()
    # an even size, where both pools give maps of one size
    x = torch.randn(1, 3, 44, 36, dtype=torch.float64)
    ref.eval()
    plain.eval()
    with torch.no_grad():
        assert not torch.allclose(plain(x)[0], ref(x)[0], **TOL)


@pytest.mark.parametrize('save', [
    lambda s: {'state_dict': s, 'epoch': 3},
    lambda s: {'model': OrderedDict(('module.' + k, v) for k, v in s.items())},
], ids=['state_dict', 'model-module'])
def test_nested_checkpoints_load(save, tmp_path):
    ref, _, net, _, _ = converted_backbone('timm-se-r18', tmp_path, save=save)
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    ref.eval()
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x)[3], ref(x)[3], **TOL)


def run_convert(name, src, tmp_path, **kwargs):
    src_path = str(tmp_path / 'bad.pth')
    torch.save(src, src_path)
    return convert_tool.convert(name, src_path, str(tmp_path / 'out.pth'),
                                overrides=dict(SMALL), **kwargs)


def r18_source():
    return source_state(make_source(dict(layout='timm', blocks=R18, bottleneck=False)))


def test_extra_and_missing_tensors_refused_by_name(tmp_path):
    src = r18_source()
    src['layer1.0.se.extra.weight'] = torch.zeros(3)
    with pytest.raises(common.ConversionError,
                       match=r'1 source tensors this format cannot map: layer1\.0\.se\.extra'):
        run_convert('timm-se', src, tmp_path)
    src = r18_source()
    del src['layer2.1.se.fc1.bias'], src['fc.bias']
    with pytest.raises(common.ConversionError, match=r'2 source tensors missing: '
                       r'layer2\.1\.se\.fc1\.bias, fc\.bias \(to drop\)'):
        run_convert('timm-se', src, tmp_path)
    assert not osp.exists(tmp_path / 'out.pth')


def test_wrong_depth_and_format_refused(tmp_path):
    with pytest.raises(common.ConversionError, match='--depth 34 given, but .* depth 18'):
        run_convert('timm-se', r18_source(), tmp_path, depth=34)
    # a Cadene checkpoint given as timm's: its keys are named in the refusal
    src = source_state(make_source(CASES['cadene-se-r50'][2]), cadene=True)
    with pytest.raises(common.ConversionError, match=r'cannot map: layer0\.conv1\.weight'):
        run_convert('timm-se', src, tmp_path)
    with pytest.raises(common.ConversionError, match="unknown format 'timm-sx'"):
        run_convert('timm-sx', src, tmp_path)


def test_unfilled_and_misshapen_backbone_tensors_refused():
    name, depth, spec, overrides = CASES['timm-se-r18']
    dst, _ = FORMATS[name].convert(source_state(make_source(spec)), depth)
    cfg = dict(FORMATS[name].backbone(depth), **overrides)
    # a backbone with a second SE per block: its tensors stay unfilled
    cfg['plugins'] = cfg['plugins'] + [
        dict(cfg['plugins'][0], cfg=dict(cfg['plugins'][0]['cfg'], postfix='_2'))]
    with pytest.raises(common.ConversionError, match=r'backbone tensors left unfilled: '
                       r'layer1\.0\.se_2\.fc1\.weight'):
        common.check_against(dst, common.backbone_state(cfg), name)
    # SE(reduction=16) in stage 1 too, where timm keeps 8 of 64 channels: the shapes are named
    cfg = dict(FORMATS[name].backbone(depth), **overrides)
    cfg['plugins'] = [dict(cfg=dict(type='mmattn.SE', reduction=16), position='after_conv3')]
    with pytest.raises(common.ConversionError, match=r'shape mismatches: layer1\.0\.se\.fc1'
                       r'\.weight: converted \(8, 64, 1, 1\), backbone \(4, 64, 1, 1\)'):
        common.check_against(dst, common.backbone_state(cfg), name)


def test_transforms():
    w = torch.randn(4, 6, dtype=torch.float64)
    assert torch.equal(common.conv1x1_to_linear(common.linear_to_conv1x1(w)), w)
    torch.testing.assert_close(F.conv2d(torch.ones(1, 6, 2, 2, dtype=torch.float64),
                                        common.linear_to_conv1x1(w))[0, :, 0, 0],
                               w @ torch.ones(6, dtype=torch.float64))
    with pytest.raises(common.ConversionError, match=r'expected a 2-D Linear weight'):
        common.linear_to_conv1x1(torch.zeros(2, 2, 1, 1))
    assert common.reshape_to(1, 1, 3)(torch.arange(3.)).shape == (1, 1, 3)
    with pytest.raises(common.ConversionError, match='has 4 elements'):
        common.reshape_to(1, 3)(torch.zeros(4))


def test_command_line(tmp_path, capsys):
    """The command itself on a full-width SE-ResNet-18 in timm's layout: exit code, report,
    config ready to paste, and a file mmengine's ``load_checkpoint`` reads into the backbone
    with nothing missing or unexpected."""
    from mmengine.runner import load_checkpoint
    src = source_state(make_source(dict(layout='timm', blocks=R18, bottleneck=False,
                                        base=64, reduction='timm')))
    src = OrderedDict((k, v.float() if v.is_floating_point() else v) for k, v in src.items())
    src_path, dst_path = str(tmp_path / 'seresnet18.pth'), str(tmp_path / 'out' / 'r18.pth')
    torch.save(src, src_path)
    assert convert_tool.main(['timm-se', src_path, dst_path]) == 0
    out = capsys.readouterr().out
    assert 'depth 18' in out and 'se: 32 tensors' in out
    assert "dropped 2 (ImageNet classifier head): fc.weight, fc.bias" in out
    assert "'type': 'Pretrained'" in out and f"'checkpoint': '{dst_path}'" in out
    cfg_text = out[out.index('backbone=') + len('backbone='):]
    cfg = eval(cfg_text)  # noqa: S307  (the printed config is a Python literal)
    assert cfg['type'] == 'mmattn.AttnResNet' and cfg['depth'] == 18
    net = build_ours(cfg)
    load_checkpoint(net, dst_path, strict=True)
    for k, v in net.state_dict().items():
        assert torch.equal(v, src[k]), k

    src['layer4.1.se.fc3.weight'] = torch.zeros(1)
    torch.save(src, src_path)
    assert convert_tool.main(['timm-se', src_path, dst_path, '--force']) == 1
    assert 'layer4.1.se.fc3.weight' in capsys.readouterr().err


def test_list_prints_every_format_with_its_backbone(capsys):
    assert convert_tool.main(['--list']) == 0
    out = capsys.readouterr().out
    for name, fmt in FORMATS.items():
        assert f'{name}: ' in out
        cfg = fmt.backbone(50 if 50 in fmt.depths else fmt.depths[0])
        assert repr(cfg['type']) in out
    assert "'groups': 32" in out and "'base_width': 8" in out and "'style': 'caffe'" in out
    assert 'not convertible: senet154' in out


def test_se_resnext101_config_loads_the_converters_output():
    """configs/faster_rcnn_se_x101-32x4d_coco.py: mmdet's X101-32x4d baseline with the
    backbone the cadene-se-x32x4d converter prints (so the converted file fits it), SE in
    every block, and layer1 frozen whole, SE included (the checkpoint holds its weights)."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    register_all_modules()
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'faster_rcnn_se_x101-32x4d_coco.py'))
    import mmdet
    base = Config.fromfile(osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs',
                                    'faster_rcnn', 'faster-rcnn_x101-32x4d_fpn_1x_coco.py'))
    backbone = cfg.model.backbone.to_dict()
    for k, v in FORMATS['cadene-se-x32x4d'].backbone(101).items():
        assert backbone[k] == v, k
    assert backbone['frozen_stages'] == 1 and backbone['norm_eval'] is True
    def unscoped(d):  # mmdet:: configs gain a _scope_ key
        if isinstance(d, list):
            return [unscoped(v) for v in d]
        return {k: v for k, v in d.to_dict().items() if k != '_scope_'}

    for key in ('train_cfg', 'optim_wrapper', 'param_scheduler'):
        assert unscoped(cfg[key]) == unscoped(base[key]), key
    assert unscoped(cfg.model.neck) == unscoped(base.model.neck)
    backbone['init_cfg'] = None
    net = MODELS.build(backbone)
    net.train()
    ses = {n: m for n, m in net.named_modules() if n.endswith('.se')}
    assert len(ses) == 3 + 4 + 23 + 3
    for n, m in ses.items():
        assert all(p.requires_grad == (not n.startswith('layer1.')) for p in m.parameters()), n
