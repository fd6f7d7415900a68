"""The converters of the networks whose 3x3 convs hold the module: SimAM's authors' ResNets
(``simam``, ``simam-x32x4d``), timm's SK nets (``timm-sk``, ``timm-sk-x32x4d``) and
implus/PytorchInsight's SK-ResNet* (``sknet``), into the backbones' conv slots.

Each source network is rebuilt in plain PyTorch from its code (``converter_sources_sk.py``, no
mmattn code), given random float64 weights and BN statistics, and saved as its release is
(SimAM's and PytorchInsight's training scripts: ``module.`` keys under ``state_dict`` with the
``arch``; timm: the bare state dict of the Hugging Face hub files). Converted by the command's
own code, the file must fill the printed backbone config (narrow widths) through mmengine's
``Pretrained`` init and load strictly, every source tensor must be used exactly once, and the
backbone must give the source's four stage outputs to 1e-10 in float64, in eval and in train
mode (batch statistics), with the same running statistics afterwards.
"""
import io
from contextlib import redirect_stderr, redirect_stdout

import pytest
import torch

from tests.helpers import randomize_, requires_mmdet
from tests.test_tools import converter_sources_sk as S

pytestmark = requires_mmdet

SIZE = 64  # stage maps 16, 8, 4, 2
# case -> (format, depth, source network, narrow config overrides, how the release saves it)
CASES = {
    'simam-r50': ('simam', 50, lambda: S.simam_resnet(50, base=16), dict(base_channels=16),
                  'training'),
    'simam-r18': ('simam', 18, lambda: S.simam_resnet(18, base=16), dict(base_channels=16),
                  'training'),
    'simam-rx50': ('simam-x32x4d', 50,
                   lambda: S.simam_resnet(50, base=16, groups=8, base_width=2),
                   dict(base_channels=16, groups=8, base_width=2), 'training'),
    'skresnet18': ('timm-sk', 18, lambda: S.timm_skresnet(18, base=16),
                   dict(base_channels=16), 'hub'),
    'skresnet34': ('timm-sk', 34, lambda: S.timm_skresnet(34, base=16),
                   dict(base_channels=16), 'hub'),
    'skresnext50': ('timm-sk-x32x4d', 50,
                    lambda: S.timm_skresnext50(base=16, cardinality=8, base_width=2),
                    dict(base_channels=16, groups=8, base_width=2), 'hub'),
    # 32 groups in the second branch: 32 channels at the narrowest
    'sk-resnet50': ('sknet', 50, lambda: S.insight_sk_resnet(50, base=32),
                    dict(base_channels=32), 'training'),
    'sk-resnet101': ('sknet', 101, lambda: S.insight_sk_resnet(101, base=32),
                     dict(base_channels=32), 'training'),
}
ARCH = {'simam': 'resnet{}', 'simam-x32x4d': 'resnext{}_32x4d', 'sknet': 'sk_resnet{}'}


def _formats():
    from tools.model_converters.formats import FORMATS
    return FORMATS


def _common():
    from tools.model_converters import common
    return common


def save_release(case, net, path):
    fmt, depth, _, _, kind = CASES[case]
    state = net.state_dict()
    if kind == 'hub':
        torch.save(state, path)
    else:
        torch.save({'epoch': 100, 'arch': ARCH[fmt].format(depth),
                    'best_acc1': torch.tensor(77.4),
                    'state_dict': {f'module.{k}': v for k, v in state.items()}}, path)


def source(case, seed=1):
    torch.manual_seed(0)
    return randomize_(CASES[case][2]().double(), seed=seed)


def _close(actual, expected, what):
    scale = max(1.0, expected.abs().max().item())
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-10 * scale,
                               msg=lambda m: f'{what}: {m}')


@pytest.mark.parametrize('case', list(CASES))
def test_converted_backbone_equals_source(case, tmp_path):
    from mmattn.registry import MODELS
    from tools.model_converters import convert as convert_tool
    name, depth, _, overrides, _ = CASES[case]
    fmt = _formats()[name]
    net = source(case)
    path = tmp_path / 'released.pth'
    save_release(case, net, path)
    src = _common().load_source(str(path))
    assert fmt.infer_depth(src) == depth
    dst, report = fmt.convert(src, depth)

    # every source tensor used exactly once: each converted tensor is a distinct source tensor,
    # the others were dropped with a reason
    by_id = {id(v): k for k, v in src.items()}
    used = [by_id[id(v)] for v in dst.values()]
    assert len(used) == len(set(used)) == len(dst) and not report.filled
    dropped = {k for k, _ in report.dropped}
    assert dropped == {'fc.weight', 'fc.bias'}
    assert set(used) | dropped == set(src)

    # the command's own code writes the file; the config it prints builds a backbone that
    # mmengine's Pretrained init fills from it, every tensor
    dst_path = tmp_path / 'converted.pth'
    out = io.StringIO()
    with redirect_stdout(out):
        cfg = convert_tool.convert(name, str(path), str(dst_path),
                                   overrides=dict(overrides, norm_eval=False))
    assert 'Backbone config (every tensor of it is in the file)' in out.getvalue()
    model = MODELS.build(dict(cfg, init_cfg=dict(type='Pretrained', checkpoint=str(dst_path))))
    model.double()
    model.init_weights()
    ours = model.state_dict()
    assert list(ours) == list(dst)
    for k, v in dst.items():
        assert torch.equal(ours[k], v.to(ours[k].dtype)), k
    plain = MODELS.build(dict(cfg)).double()
    plain.load_state_dict(dst, strict=True)

    x = torch.randn(2, 3, SIZE, SIZE, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(2))
    for train in (False, True):
        net.train(train)
        model.train(train)
        with torch.no_grad():
            expected, actual = net(x), model(x)
        assert len(actual) == 4
        for i, (a, e) in enumerate(zip(actual, expected)):
            _close(a, e, f'{case}, {"train" if train else "eval"} mode, stage {i + 1}')
    # the training-mode pass moved the running statistics alike (same momenta)
    dst_after, _ = fmt.convert(dict(net.state_dict()), depth)
    ours = model.state_dict()
    for k, v in dst_after.items():
        if v.is_floating_point():
            _close(ours[k], v, f'{case}: {k} after a training-mode pass')


@pytest.mark.parametrize('case,net', [('skresnet18', lambda: S.timm_skresnet(18)),
                                      ('sk-resnet50', lambda: S.insight_sk_resnet(50))])
def test_full_width_command_line(case, net, tmp_path):
    """convert.py end to end on the released widths (timm's fuse widths 16, 16, 32, 64 and
    the split paths of skresnet18; PytorchInsight's C // 16 of SK-ResNet50*): the printed
    config, without overrides, loads the file strictly and computes the source network."""
    from mmengine.runner import load_checkpoint

    from tools.model_converters import convert
    name = CASES[case][0]
    src_net = randomize_(net().double(), seed=3).eval()
    src = tmp_path / f'{"skresnet18.ra_in1k" if name == "timm-sk" else "sk_resnet50"}.pth'
    save_release(case, src_net, src)
    dst = tmp_path / 'out' / f'{name}.pth'
    out = io.StringIO()
    with redirect_stdout(out):
        assert convert.main([name, str(src), str(dst)]) == 0
    text = out.getvalue()
    printed = eval(text[text.index('backbone=') + len('backbone='):])  # noqa: S307
    assert printed.pop('init_cfg') == dict(type='Pretrained', checkpoint=str(dst))
    assert printed == _formats()[name].backbone(CASES[case][1])
    model = _common().build_backbone(printed).double()
    model.eval()
    load_checkpoint(model, str(dst), strict=True, logger='silent')
    x = torch.randn(1, 3, SIZE, SIZE, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        for i, (a, e) in enumerate(zip(model(x), src_net(x))):
            _close(a, e, f'{case} full width, stage {i + 1}')


@pytest.mark.parametrize('case', ['simam-r50', 'skresnet18', 'skresnext50', 'sk-resnet50'])
def test_missing_or_extra_tensor_is_refused_by_name(case):
    common = _common()
    name, depth = CASES[case][:2]
    src = dict(source(case).state_dict())
    key = next(k for k in src if k.startswith('layer3.') and ('.conv2' in k or '.conv1.' in k)
               and not k.endswith('num_batches_tracked'))
    with pytest.raises(common.ConversionError, match=key.replace('.', r'\.')):
        _formats()[name].convert({k: v for k, v in src.items() if k != key}, depth)
    extra = key.rsplit('.', 1)[0] + '.extra_tensor'
    with pytest.raises(common.ConversionError, match=extra.replace('.', r'\.')):
        _formats()[name].convert(dict(src, **{extra: torch.zeros(3)}), depth)


@pytest.mark.parametrize('case,given,hint', [
    ('simam-rx50', 'simam', "'simam-x32x4d'"),  # the ResNeXt given as the ResNet
    ('skresnext50', 'timm-sk', "'timm-sk-x32x4d'"),
    ('sk-resnet50', 'timm-sk-x32x4d', "'sknet'"),
    ('skresnet18', 'simam', "'timm-sk'"),
])
def test_another_formats_checkpoint_names_that_format(case, given, hint, tmp_path):
    from tools.model_converters import convert
    net = source(case)
    path = tmp_path / 'weights.pth'
    save_release(case, net, path)
    # the narrow widths (groups and base width stay the released ones: a narrow ResNeXt's
    # tensors then fit by name only, which is enough to be named)
    overrides = dict(base_channels=CASES[case][3]['base_channels'])
    with pytest.raises(convert.ConversionError, match=hint):
        with redirect_stdout(io.StringIO()):
            convert.convert(given, str(path), str(tmp_path / 'dst.pth'), overrides=overrides)
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        assert convert.main([given, str(path), str(tmp_path / 'dst.pth')]) == 1
    assert hint in err.getvalue() and len(err.getvalue().strip().split('\n')) == 1
    assert not (tmp_path / 'dst.pth').exists()


def test_untrained_timm_sk_nets_are_refused_by_name(tmp_path):
    """timm's skresnet50 has skresnext50_32x4d's depth and its own layout: a file named so is
    refused, saying why, before its tensors are looked at."""
    from tools.model_converters import convert
    path = tmp_path / 'skresnet50_trained.pth'
    torch.save(dict(source('skresnext50').state_dict()), path)
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        assert convert.main(['timm-sk-x32x4d', str(path), str(tmp_path / 'dst.pth')]) == 1
    assert 'skresnet50 (its file name): not convertible: listed untrained by timm' in \
        ' '.join(err.getvalue().split())


def test_list_prints_the_config_of_each_format(capsys):
    from tools.model_converters import convert
    assert convert.main(['--list']) == 0
    text = capsys.readouterr().out
    sections = {}
    for line in text.split('\n'):
        if line and not line.startswith(' '):
            current = sections.setdefault(line.split(':', 1)[0], [])
        current.append(line)
    for name in ('simam', 'simam-x32x4d', 'timm-sk', 'timm-sk-x32x4d', 'sknet'):
        section = '\n'.join(sections[name])
        assert 'loads into: backbone=' in section and 'not convertible: SimAM' not in section
        assert '    exactness: ' in section
    assert "'conv1_cfg': {   'type': 'mmattn.SKConv'" in '\n'.join(sections['timm-sk'])
    assert "'split_input': True" in '\n'.join(sections['timm-sk'])
    assert "'type': 'mmattn.AttnConv2d'" in '\n'.join(sections['simam'])
    assert "'e_lambda': 0.1" in '\n'.join(sections['simam'])
    assert "'branch_groups': (1, 32)" in '\n'.join(sections['sknet'])
    assert 'not convertible: skresnet26d' in '\n'.join(sections['timm-sk'])
