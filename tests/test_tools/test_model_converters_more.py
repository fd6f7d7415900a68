"""The converters of the authors' attention ResNets (CBAM, BAM, ECA, SGE, SRM, FcaNet, triplet
attention, GC); those whose 3x3 convs hold the module (SimAM, SK) are tested in
``test_model_converters_sk.py``.

Each source network is rebuilt in plain PyTorch from its authors' layout
(``converter_sources_more.py``, no mmattn code), given random float64 weights and saved as the
authors' scripts save it. Converted by the command's code, the file must fill the format's
backbone config (narrow widths) through mmengine's ``Pretrained`` init and load strictly,
every source tensor must be used exactly once, and the backbone must give the source's four
stage outputs to 1e-10, in eval and in train mode (batch statistics), with the same running
statistics afterwards.
"""
import io
import itertools
from contextlib import redirect_stdout

import pytest
import torch

from tests.helpers import randomize_, requires_mmdet
from tests.test_tools import converter_sources_more as S

pytestmark = requires_mmdet

BASE = 16  # widths 16..128 (outputs 64..512): every module's released arguments still apply
SIZE = 64  # stage maps 16, 8, 4, 2
# the released ECA kernels per stage (file names eca_resnet50_k3557, eca_resnet18_k3577)
ECA_K = {50: (3, 5, 5, 7), 18: (3, 5, 7, 7)}
FCA_SIZES = (56, 28, 14, 7)


def _formats():
    from tools.model_converters.formats import FORMATS
    return FORMATS


def _common():
    from tools.model_converters import common
    return common


def source_net(name, depth=50, base=BASE):
    """(network, attention name in its blocks) in the layout of format ``name``."""
    if name == 'cbam':
        net = S.SourceResNet(depth, base, 'cbam', lambda i, c: S.CBAMSource(c))
    elif name == 'bam':
        net = S.SourceResNet(depth, base, stage_attn=lambda i, c: S.BAMSource(c))
    elif name == 'eca':
        net = S.SourceResNet(depth, base, 'eca', lambda i, c: S.ECASource(ECA_K[depth][i]))
    elif name == 'sge':
        net = S.SourceResNet(depth, base, 'sge', lambda i, c: S.SGESource(64))
    elif name == 'srm':
        net = S.SourceResNet(depth, base, 'rclb', lambda i, c: S.SRMSource(c))
    elif name == 'fcanet':
        net = S.SourceResNet(depth, base, 'att', lambda i, c: S.FcaSource(c, FCA_SIZES[i]))
    elif name in ('triplet', 'triplet-k3'):
        k = 3 if name == 'triplet-k3' else 7
        net = S.SourceResNet(depth, base, 'triplet_attention', lambda i, c: S.TripletSource(k))
    elif name in ('gcnet', 'gcnet-r4'):
        ratio = 1 / 4 if name == 'gcnet-r4' else 1 / 16
        net = S.SourceResNet(depth, base, 'context_block',
                             lambda i, c: S.GCSource(c, ratio) if i else None)
    else:
        raise KeyError(name)
    return randomize_(net.double(), seed=1)


def released_file(name, state, path):
    """Save ``state`` as the authors' scripts did: a training checkpoint from DataParallel
    (``module.`` keys under ``state_dict``), or, for GCNet, an mmdetection v1 detector."""
    if name.startswith('gcnet'):
        det = {f'backbone.{k}': v for k, v in state.items() if not k.startswith('fc.')}
        det['neck.lateral_convs.0.conv.weight'] = torch.zeros(4, 8, 1, 1)
        det['rpn_head.rpn_cls.weight'] = torch.zeros(3, 4, 1, 1)
        det['bbox_head.fc_cls.bias'] = torch.zeros(81)
        obj = {'meta': {'mmdet_version': '0.6.0+'}, 'state_dict': det}
    else:
        obj = {'epoch': 100, 'arch': 'resnet', 'best_prec1': torch.tensor(77.6),
               'state_dict': {f'module.{k}': v for k, v in state.items()}}
    torch.save(obj, path)
    return _common().load_source(str(path))


def backbone(name, depth, base=BASE):
    cfg = dict(_formats()[name].backbone(depth))
    # training mode with batch statistics, as the source trains (mmdet's default keeps the
    # norms in eval mode)
    cfg.update(base_channels=base, norm_eval=False)
    return _common().build_backbone(cfg).double()


def _close(actual, expected, what):
    scale = max(1.0, expected.abs().max().item())
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-10 * scale,
                               msg=lambda m: f'{what}: {m}')


CONVERTED = ('cbam', 'bam', 'eca', 'sge', 'srm', 'fcanet', 'triplet', 'triplet-k3', 'gcnet',
             'gcnet-r4')


@pytest.mark.parametrize('name,depth', [(n, 50) for n in CONVERTED] + [('eca', 18),
                                                                        ('cbam', 18)])
def test_converted_backbone_equals_source(name, depth, tmp_path):
    fmt = _formats()[name]
    net = source_net(name, depth)
    src = released_file(name, net.state_dict(), tmp_path / 'released.pth.tar')
    assert fmt.infer_depth(src) == depth
    dst, report = fmt.convert(src, depth)

    # every source tensor used exactly once: each converted tensor *is* a distinct source
    # tensor (no format here transforms one), and all others were dropped with a reason
    by_id = {id(v): k for k, v in src.items()}
    used = [by_id.get(id(v)) for v in dst.values() if id(v) in by_id]
    filled = {k for k, _ in report.filled}
    assert len(used) == len(set(used)) == len(dst) - len(filled)
    dropped = {k for k, _ in report.dropped}
    assert set(used) | dropped == set(src) and not set(used) & dropped
    assert all(k.endswith('num_batches_tracked') for k in filled)
    if name.startswith('gcnet'):
        assert dropped == {k for k in src if not k.startswith('backbone.')}
    else:
        assert dropped == {'fc.weight', 'fc.bias'}

    # the command's own code writes the file; mmengine's Pretrained init fills the backbone
    # from it (after which no module's own init may overwrite a tensor)
    from tools.model_converters import convert as convert_tool
    dst_path = tmp_path / 'converted.pth'
    with redirect_stdout(io.StringIO()):
        cfg = convert_tool.convert(name, str(tmp_path / 'released.pth.tar'), str(dst_path),
                                   overrides=dict(base_channels=BASE, norm_eval=False))
    from mmattn.registry import MODELS
    model = MODELS.build(dict(cfg, init_cfg=dict(type='Pretrained', checkpoint=str(dst_path))))
    model.double()
    model.init_weights()
    ours = model.state_dict()
    assert list(ours) == list(dst)
    for k, v in dst.items():
        assert torch.equal(ours[k], v.to(ours[k].dtype)), k
    backbone(name, depth).load_state_dict(dst, strict=True)

    x = torch.randn(2, 3, SIZE, SIZE, dtype=torch.float64, generator=torch.Generator()
                    .manual_seed(2))
    for train in (False, True):
        net.train(train)
        model.train(train)
        with torch.no_grad():
            expected, actual = net(x), model(x)
        assert len(actual) == 4
        for i, (a, e) in enumerate(zip(actual, expected)):
            _close(a, e, f'{name}, {"train" if train else "eval"} mode, stage {i + 1}')
    # after the training-mode pass the running statistics moved alike (same momenta)
    src_after = net.state_dict()
    if name.startswith('gcnet'):
        src_after = {f'backbone.{k}': v for k, v in src_after.items() if not k.startswith('fc.')}
        src_after.update({k: v for k, v in src.items() if not k.startswith('backbone.')})
    dst_after, _ = fmt.convert(src_after, depth)
    ours = model.state_dict()
    for k, v in dst_after.items():
        if v.is_floating_point():
            _close(ours[k], v, f'{name}: {k} after a training-mode pass')


def _attention_key(name, src):
    """A tensor of the format's attention module in stage 3 (BAM: of ``bam2``)."""
    if name == 'bam':
        return next(k for k in src if k.startswith('bam2.'))
    marker = {'cbam': '.cbam.', 'eca': '.eca.', 'sge': '.sge.', 'srm': '.rclb.',
              'fcanet': '.att.', 'triplet': '.triplet_attention.',
              'gcnet': '.context_block.'}[name]
    return next(k for k in src if marker in k and 'layer3.' in k
                and not k.endswith('num_batches_tracked'))


@pytest.mark.parametrize('name', ['cbam', 'bam', 'eca', 'sge', 'srm', 'fcanet', 'triplet',
                                  'gcnet'])
def test_missing_or_extra_tensor_is_refused_by_name(name):
    common, fmt = _common(), _formats()[name]
    src = dict(source_net(name).state_dict())
    if name == 'gcnet':
        src = {f'backbone.{k}': v for k, v in src.items() if not k.startswith('fc.')}
    key = _attention_key(name, src)
    missing = {k: v for k, v in src.items() if k != key}
    with pytest.raises(common.ConversionError, match=key.replace('.', r'\.')):
        fmt.convert(missing, 50)
    extra_key = key.rsplit('.', 1)[0] + '.extra_tensor'
    extra = dict(src, **{extra_key: torch.zeros(3)})
    with pytest.raises(common.ConversionError, match=extra_key.replace('.', r'\.')):
        fmt.convert(extra, 50)
    stray = dict(src, **{'layer2.0.se.fc1.weight': torch.zeros(3)})
    if name == 'gcnet':  # outside backbone. a tensor is the detector's: dropped, by design
        stray = dict(src, **{'backbone.layer2.0.se.fc1.weight': torch.zeros(3)})
    with pytest.raises(common.ConversionError, match=r'se\.fc1\.weight'):
        fmt.convert(stray, 50)


def test_triplet_reads_the_root_module_names_too(tmp_path):
    """The root ``triplet_attention.py`` names the gates cw/hc/hw, each ``conv.{conv,bn}``."""
    net = source_net('triplet')
    renames = {'ChannelGateH.spatial.': 'cw.conv.', 'ChannelGateW.spatial.': 'hc.conv.',
               'SpatialGate.spatial.': 'hw.conv.'}
    src = {}
    for k, v in net.state_dict().items():
        for old, new in renames.items():
            k = k.replace(old, new)
        src[k] = v
    dst, _ = _formats()['triplet'].convert(src, 50)
    reference, _ = _formats()['triplet'].convert(net.state_dict(), 50)
    assert dst.keys() == reference.keys()
    assert all(dst[k] is src[k2] for k, k2 in [('layer1.0.triplet.cw.conv.weight',
                                                'layer1.0.triplet_attention.cw.conv.conv.weight'),
                                               ('layer4.2.triplet.hw.bn.running_var',
                                                'layer4.2.triplet_attention.hw.conv.bn.'
                                                'running_var')])


@pytest.mark.parametrize('name,source,hint', [
    ('eca', 'eca-k3', 'kernel_size per'),  # a checkpoint trained with k = 3 everywhere
    ('triplet', 'triplet-k3', "use format 'triplet-k3'"),
    ('triplet-k3', 'triplet', "use format 'triplet'"),
    ('gcnet', 'gcnet-r4', "use format 'gcnet-r4'"),
    ('gcnet-r4', 'gcnet', "use format 'gcnet'"),
])
def test_other_released_variant_is_refused_with_the_right_format(name, source, hint):
    if source == 'eca-k3':
        net = randomize_(S.SourceResNet(50, BASE, 'eca', lambda i, c: S.ECASource(3)).double())
    else:
        net = source_net(source)
    src = dict(net.state_dict())
    if name.startswith('gcnet'):
        src = {f'backbone.{k}': v for k, v in src.items() if not k.startswith('fc.')}
    with pytest.raises(_common().ConversionError, match=hint):
        _formats()[name].convert(src, 50)


def _section(text, name):
    """The lines ``--list`` prints for one format."""
    first, *rest = ('\n' + text).split(f'\n{name}: ', 1)[1].split('\n')
    return '\n'.join([first, *itertools.takewhile(lambda ln: ln.startswith(' '), rest)])


def test_list_names_every_format_its_config_or_why_not():
    from tools.model_converters import convert
    out = io.StringIO()
    with redirect_stdout(out):
        assert convert.main(['--list']) == 0
    text = out.getvalue()
    for name in CONVERTED + ('simam', 'timm-sk'):
        assert f'\n{name}: ' in '\n' + text, name
        assert 'loads into' in _section(text, name), name
    assert "'mmattn.FcaNet'" in text and "'dct_size': 56" in text
    assert "'stage_plugins'" in _section(text, 'bam')

def test_command_line_full_width_resnet18_eca(tmp_path):
    """convert.py end to end on a full-width ECA-ResNet-18 file: the output loads with
    ``init_cfg=Pretrained`` into the printed config and computes the source network."""
    from mmengine.runner import load_checkpoint

    from tools.model_converters import convert
    net = randomize_(S.SourceResNet(18, 64, 'eca', lambda i, c: S.ECASource(ECA_K[18][i]),
                                    num_classes=1000).double(), seed=3).eval()
    src = tmp_path / 'eca_resnet18_k3577.pth.tar'
    torch.save({'state_dict': {f'module.{k}': v for k, v in net.state_dict().items()}}, src)
    dst = tmp_path / 'out' / 'eca_r18.pth'
    out = io.StringIO()
    with redirect_stdout(out):
        assert convert.main(['eca', str(src), str(dst)]) == 0
    text = out.getvalue()
    assert "'kernel_size': 7" in text and str(dst) in text and 'dropped 2' in text
    model = _common().build_backbone(_formats()['eca'].backbone(18)).double()
    model.eval()  # not chained: mmdet's ResNet.train returns None
    load_checkpoint(model, str(dst), strict=True)
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        for i, (a, e) in enumerate(zip(model(x), net.double()(x))):
            _close(a, e, f'stage {i + 1}')
