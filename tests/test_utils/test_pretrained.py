"""Warnings and errors around pretrained checkpoints and frozen attention modules.

- a backbone whose pretrained checkpoint holds none of its attention weights says so, one line
  per module type, with the converter that would fill them, from what mmengine's load
  filled, without reading the checkpoint a second time;
- a training run with attention modules that cannot train warns once, naming them and
  mmattn.AttnResNet, unless the config asked for it;
- a config starting from a missing converted checkpoint fails with the converter command;
- the module -> converter-format table agrees with the converters' --list.
"""
import ast
import inspect
import logging
import os
import os.path as osp
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from mmattn.utils.pretrained import (CONVERTER_FORMATS, CheckpointNotFoundError,
                                     attention_missing_from, check_pretrained_checkpoints,
                                     converter_formats, format_of_checkpoint)
from tests.helpers import requires_mmdet

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SE = dict(cfg=dict(type='mmattn.SE', reduction=4), position='after_conv3')
CBAM = dict(cfg=dict(type='mmattn.CBAM', reduction=4), position='after_conv3')


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def warnings_logged():
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    handler = _Capture()
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


def _mmattn_lines(lines):
    return [line for line in lines if line.startswith('mmattn:')]


def _attn_resnet(**kwargs):
    from mmattn.models.backbones import AttnResNet
    return AttnResNet(50, base_channels=8, **kwargs)


def _plain_resnet(**kwargs):
    from mmdet.models.backbones import ResNet
    return ResNet(50, base_channels=8, **kwargs)


# -- which attention modules a pretrained checkpoint left at random init ---------------------

@requires_mmdet
def test_plain_checkpoint_names_each_module_type_once(tmp_path, warnings_logged):
    ckpt = str(tmp_path / 'plain.pth')
    torch.save(dict(state_dict=_plain_resnet().state_dict()), ckpt)
    net = _attn_resnet(plugins=[SE, CBAM], init_cfg=dict(type='Pretrained', checkpoint=ckpt))
    net.init_weights()
    lines = _mmattn_lines(warnings_logged)
    assert len(lines) == 2, lines
    se_line, cbam_line = lines
    # ResNet-50: 3 + 4 + 6 + 3 bottlenecks, each with one SE and one CBAM
    assert ' 16 SE module(s)' in se_line and ' 16 CBAM module(s)' in cbam_line
    assert 'layer1.0.se' in se_line and 'layer1.0.cbam' in cbam_line
    assert 'convert.py FORMAT SRC DST` with FORMAT one of timm-se, cadene-se' in se_line
    assert 'with FORMAT cbam ' in cbam_line and ckpt in cbam_line
    # and the ResNet's own weights did load
    torch.testing.assert_close(net.layer4[2].conv3.weight,
                               torch.load(ckpt)['state_dict']['layer4.2.conv3.weight'])


@requires_mmdet
def test_checkpoint_with_the_attention_weights_is_quiet(tmp_path, warnings_logged):
    ckpt = str(tmp_path / 'se.pth')
    src = _attn_resnet(plugins=[SE])
    # as a whole detector's checkpoint, read through prefix='backbone.'
    torch.save(dict(state_dict={f'backbone.{k}': v for k, v in src.state_dict().items()}),
               ckpt)
    net = _attn_resnet(plugins=[SE], init_cfg=dict(type='Pretrained', checkpoint=ckpt,
                                                   prefix='backbone.'))
    net.init_weights()
    assert not _mmattn_lines(warnings_logged)
    torch.testing.assert_close(net.layer3[5].se.fc2.weight, src.layer3[5].se.fc2.weight)


@requires_mmdet
def test_missing_modules_listed_exactly():
    net = _attn_resnet(plugins=[SE], stage_plugins=[
        dict(cfg=dict(type='mmattn.BAM', reduction=4), stages=(True, False, False, False))])
    keys = {k for k in net.state_dict() if not k.startswith('layer2.')}
    keys.discard('layer1.1.se.fc1.weight')  # partly held: left to mmengine's message
    missing = attention_missing_from(net, keys)
    assert list(missing) == ['SE']
    assert missing['SE'] == [f'layer2.{i}.se' for i in range(4)]
    missing = attention_missing_from(net, [k for k in net.state_dict() if '_attn' not in k])
    assert missing == {'BAM': ['layer1_attn.bam']}


@requires_mmdet
def test_no_second_report_for_an_initialised_backbone(tmp_path, warnings_logged):
    ckpt = str(tmp_path / 'plain.pth')
    torch.save(_plain_resnet().state_dict(), ckpt)  # a bare state dict, as torchvision's
    net = _attn_resnet(plugins=[SE], init_cfg=dict(type='Pretrained', checkpoint=ckpt))
    net.init_weights()
    net.init_weights()  # mmengine skips a second init
    assert len(_mmattn_lines(warnings_logged)) == 1


@pytest.fixture
def checkpoint_reads(monkeypatch):
    """The checkpoints read through mmengine's CheckpointLoader, in order."""
    from mmengine.runner.checkpoint import CheckpointLoader
    reads = []
    load = CheckpointLoader.load_checkpoint.__func__

    def counting(cls, filename, *args, **kwargs):
        reads.append(filename)
        return load(cls, filename, *args, **kwargs)

    monkeypatch.setattr(CheckpointLoader, 'load_checkpoint', classmethod(counting))
    return reads


@requires_mmdet
@pytest.mark.parametrize('prefix', [None, 'backbone.'])
def test_the_report_reads_no_checkpoint_twice(tmp_path, warnings_logged, checkpoint_reads,
                                              prefix):
    """The backbone's report comes from what mmengine's load filled, not a second read."""
    state = _plain_resnet().state_dict()
    if prefix:
        state = {prefix + k: v for k, v in state.items()}
    ckpt = str(tmp_path / 'plain.pth')
    torch.save(dict(state_dict=state), ckpt)
    net = _attn_resnet(plugins=[SE], init_cfg=dict(type='Pretrained', checkpoint=ckpt,
                                                   prefix=prefix))
    net.init_weights()
    assert checkpoint_reads == [ckpt]
    (line, ) = _mmattn_lines(warnings_logged)
    assert ' 16 SE module(s)' in line and 'layer1.0.se, layer1.1.se' in line and ckpt in line


BAM = dict(cfg=dict(type='mmattn.BAM', reduction=4), stages=(False, True, False, False))


@requires_mmdet
def test_each_checkpoint_named_for_what_it_left_out(tmp_path, warnings_logged,
                                                    checkpoint_reads):
    """Two Pretrained entries: each line names the checkpoint that held none of those
    modules (mmengine loads them in the init_cfg's order)."""
    own = _attn_resnet(plugins=[SE], stage_plugins=[BAM]).state_dict()
    plain_bam = str(tmp_path / 'plain_bam.pth')
    torch.save({k: v for k, v in own.items() if '.se.' not in k}, plain_bam)
    se_only = str(tmp_path / 'se_only.pth')
    torch.save({k: v for k, v in own.items() if '.se.' in k}, se_only)
    net = _attn_resnet(plugins=[SE], stage_plugins=[BAM], init_cfg=[
        dict(type='Kaiming', layer='Conv2d'), dict(type='Pretrained', checkpoint=plain_bam),
        dict(type='Pretrained', checkpoint=se_only)])
    net.init_weights()
    assert checkpoint_reads == [plain_bam, se_only]
    se_line, bam_line = _mmattn_lines(warnings_logged)
    assert repr(plain_bam) in se_line and ' 16 SE module(s)' in se_line
    assert repr(se_only) in bam_line and ' 1 BAM module(s)' in bam_line
    assert bam_line.endswith('layer2_attn.bam; a checkpoint holding them comes from `python '
                             'tools/model_converters/convert.py FORMAT SRC DST` with FORMAT '
                             'bam (`--list` says which backbone each fills).')
    torch.testing.assert_close(net.layer2[0].se.fc1.weight, own['layer2.0.se.fc1.weight'])
    torch.testing.assert_close(net.layer2_attn.bam.spatial_out.weight,
                               own['layer2_attn.bam.spatial_out.weight'])


@requires_mmdet
def test_a_checkpoint_equal_to_the_initial_values_counts_as_held(tmp_path, warnings_logged,
                                                                 monkeypatch):
    """Every tensor of the checkpoint equals the value it replaces (the same seed, the same
    Kaiming init before the load): the modules are held all the same, so no line."""
    from mmengine.model.weight_init import PretrainedInit
    before_load = {}
    load = PretrainedInit.__call__

    def snapshot(self, module):
        before_load.update({k: v.clone() for k, v in module.state_dict().items()})
        return load(self, module)

    monkeypatch.setattr(PretrainedInit, '__call__', snapshot)
    kaiming = dict(type='Kaiming', layer='Conv2d')
    torch.manual_seed(0)
    net = _attn_resnet(plugins=[SE, CBAM], stage_plugins=[BAM], init_cfg=[kaiming])
    net.init_weights()
    ckpt = str(tmp_path / 'same.pth')
    torch.save(net.state_dict(), ckpt)
    torch.manual_seed(0)
    net2 = _attn_resnet(plugins=[SE, CBAM], stage_plugins=[BAM], init_cfg=[
        kaiming, dict(type='Pretrained', checkpoint=ckpt)])
    warnings_logged.clear()
    net2.init_weights()
    assert not _mmattn_lines(warnings_logged)
    assert list(before_load) == list(net.state_dict())
    for key, value in net.state_dict().items():
        # the premise: the load changed no value
        torch.testing.assert_close(before_load[key], value, rtol=0, atol=0, msg=key)


# -- attention modules that cannot train ---------------------------------------------------

def _runner(model, tmp_path=None):
    from mmengine.logging import MMLogger
    return SimpleNamespace(model=model, logger=MMLogger.get_current_instance(),
                           _load_from=None, _resume=False)


@requires_mmdet
def test_hook_warns_once_about_frozen_plugins_of_mmdet_resnet(warnings_logged):
    from mmattn.engine import AttentionCheckHook
    net = _plain_resnet(frozen_stages=1, plugins=[
        dict(cfg=dict(type='mmattn.CBAM', reduction=4), stages=(True, True, True, True),
             position='after_conv3')])
    net.train()
    hook = AttentionCheckHook()
    hook.before_train(_runner(net))
    lines = _mmattn_lines(warnings_logged)
    assert len(lines) == 1 and hook.messages == lines
    # mmdet froze layer1 whole: its three bottlenecks' CBAMs, and nothing of layer2
    assert '3 attention module(s) (3 CBAM)' in lines[0]
    for i in range(3):
        assert f'layer1.{i}.cbam' in lines[0]
    assert 'layer2' not in lines[0] and "'mmattn.AttnResNet'" in lines[0]


@requires_mmdet
@pytest.mark.parametrize('freeze_plugins', [False, True])
def test_hook_quiet_when_attnresnet_trains_them_or_was_asked_to_freeze(
        freeze_plugins, warnings_logged):
    from mmattn.engine import AttentionCheckHook
    net = _attn_resnet(frozen_stages=1, freeze_plugins=freeze_plugins, plugins=[CBAM])
    net.train()
    assert any(not p.requires_grad for p in net.layer1[0].cbam.parameters()) == freeze_plugins
    AttentionCheckHook().before_train(_runner(net))
    assert not _mmattn_lines(warnings_logged)


@requires_mmdet
def test_hook_warns_about_modules_frozen_by_hand(warnings_logged):
    from mmattn.engine import AttentionCheckHook
    net = _attn_resnet(frozen_stages=1, freeze_plugins=True, plugins=[CBAM])
    net.layer3[1].cbam.requires_grad_(False)  # not what freeze_plugins asked for
    AttentionCheckHook().before_train(_runner(net))
    (line, ) = _mmattn_lines(warnings_logged)
    assert '1 attention module(s) (1 CBAM)' in line and 'layer3.1.cbam' in line
    assert 'something else set requires_grad=False' in line


@requires_mmdet
def test_hook_reports_plain_checkpoint_in_mmdet_resnet(tmp_path, warnings_logged):
    from mmattn.engine import AttentionCheckHook
    ckpt = str(tmp_path / 'plain.pth')
    torch.save(dict(state_dict=_plain_resnet().state_dict()), ckpt)
    detector = torch.nn.Module()
    detector.backbone = _plain_resnet(
        plugins=[dict(cfg=dict(type='mmattn.GlobalContext', ratio=1 / 4),
                      stages=(False, True, True, True), position='after_conv3')],
        init_cfg=dict(type='Pretrained', checkpoint=ckpt))
    detector.backbone.init_weights()
    assert not _mmattn_lines(warnings_logged)  # mmdet's ResNet does not say it
    AttentionCheckHook().before_train(_runner(detector))
    (line, ) = _mmattn_lines(warnings_logged)
    assert ' 13 GlobalContext module(s)' in line  # 4 + 6 + 3 blocks
    assert 'backbone.layer2.0.context_block' in line
    assert 'with FORMAT one of gcnet, gcnet-r4 ' in line
    # a run that loads a whole checkpoint afterwards is not warned about its init
    warnings_logged.clear()
    runner = _runner(detector)
    runner._load_from = ckpt
    AttentionCheckHook().before_train(runner)
    assert not _mmattn_lines(warnings_logged)


@requires_mmdet
def test_hook_reads_no_checkpoint_twice_when_the_run_initialises(tmp_path, warnings_logged,
                                                                 checkpoint_reads):
    """Within a run (before_run, the runner's init, before_train) the hook's line comes from
    what mmengine's load filled; the same line as from a second read."""
    from mmattn.engine import AttentionCheckHook
    ckpt = str(tmp_path / 'plain.pth')
    torch.save(dict(state_dict=_plain_resnet().state_dict()), ckpt)
    lines = []
    for in_run in (True, False, 'initialised before the run'):
        detector = torch.nn.Module()
        detector.backbone = _plain_resnet(
            plugins=[dict(cfg=dict(type='mmattn.GlobalContext', ratio=1 / 4),
                          stages=(False, True, True, True), position='after_conv3')],
            init_cfg=dict(type='Pretrained', checkpoint=ckpt))
        hook, runner = AttentionCheckHook(), _runner(detector)
        if in_run is not True:
            detector.backbone.init_weights()
        if in_run:
            hook.before_run(runner)
        detector.backbone.init_weights()  # a second call is skipped by mmengine
        checkpoint_reads.clear()
        hook.before_train(runner)
        assert checkpoint_reads == ([] if in_run is True else [ckpt])
        (line, ) = _mmattn_lines(warnings_logged)
        warnings_logged.clear()
        lines.append(line)
        assert not detector.backbone._load_state_dict_pre_hooks  # the recorder is closed
    assert lines[0] == lines[1] == lines[2] and ' 13 GlobalContext module(s)' in lines[0]


def test_hook_registered_in_mmattn_scope():
    from mmengine.registry import HOOKS
    from mmattn.engine import AttentionCheckHook
    assert HOOKS.get('mmattn.AttentionCheckHook') is AttentionCheckHook


# -- a missing converted checkpoint names its converter ------------------------------------

def _cfg(checkpoint):
    from mmengine.config import Config
    return Config(dict(model=dict(type='FasterRCNN', backbone=dict(
        type='mmattn.AttnResNet', init_cfg=dict(type='Pretrained', checkpoint=checkpoint)))))


def test_missing_converted_checkpoint_names_the_converter(tmp_path):
    path = str(tmp_path / 'checkpoints' / 'cbam_r50.pth')
    with pytest.raises(CheckpointNotFoundError) as err:
        check_pretrained_checkpoints(_cfg(path))
    msg = str(err.value)
    assert msg.startswith('model.backbone.init_cfg: no checkpoint at')
    assert f'`python tools/model_converters/convert.py cbam SRC {path}`' in msg
    assert 'CBAM' in msg
    os.makedirs(osp.dirname(path))
    torch.save({}, path)
    check_pretrained_checkpoints(_cfg(path))  # there: no error


def test_other_checkpoints(tmp_path):
    check_pretrained_checkpoints(_cfg('torchvision://resnet50'))  # mmengine fetches these
    with pytest.raises(CheckpointNotFoundError, match='--cfg-options'):
        check_pretrained_checkpoints(_cfg(str(tmp_path / 'mine.pth')))
    assert format_of_checkpoint('checkpoints/timm-se_r50.pth') == 'timm-se'
    assert format_of_checkpoint('checkpoints/nonsense_r50.pth') is None


@requires_mmdet
def test_train_py_fails_before_building_with_the_converter_command(tmp_path):
    config = osp.join(ROOT, 'configs', 'pretrained', 'faster_rcnn_cbam_r50_coco.py')
    if not osp.exists(config):
        pytest.skip('configs/pretrained/faster_rcnn_cbam_r50_coco.py not on this branch')
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir',
         str(tmp_path / 'w')], cwd=str(tmp_path), env=env, capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert ('`python tools/model_converters/convert.py cbam SRC checkpoints/cbam_r50.pth`'
            in proc.stderr), proc.stderr[-2000:]
    assert not (tmp_path / 'w').exists()


def test_train_py_adds_the_hook_once():
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    try:
        import train
    finally:
        sys.path.pop(0)
    from mmengine.config import Config
    cfg = Config(dict())
    train.add_hook(cfg, train.CHECK_HOOK)
    train.add_hook(cfg, train.CHECK_HOOK)
    assert cfg.custom_hooks == [dict(type='mmattn.AttentionCheckHook')]


# -- the table agrees with the converters ---------------------------------------------------

def _converter_list():
    convert = osp.join(ROOT, 'tools', 'model_converters', 'convert.py')
    if not osp.exists(convert):
        pytest.skip('tools/model_converters/convert.py not on this branch')
    proc = subprocess.run([sys.executable, convert, '--list'], cwd=ROOT, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def parse_listing(text):
    """Format name -> attention module types of the backbone config ``--list`` prints."""
    formats = {}
    for block in re.split(r'(?m)^(?=\S)', text):
        if not block.strip():
            continue
        name = block.split(':', 1)[0].strip()
        found = re.search(r'loads into: backbone=(.*?)(?=\n    \S[^\n]*?: |\Z)', block, re.S)
        if not found:
            assert 'not convertible: ' in block, f'{name}: no backbone config:\n{block}'
            formats[name] = None  # a format that refuses, saying why
            continue
        cfg = ast.literal_eval(found.group(1).strip())
        specs = list(cfg.get('plugins') or []) + list(cfg.get('stage_plugins') or [])
        formats[name] = {spec['cfg']['type'].split('.')[-1] for spec in specs}
        # a conv slot's layer (SKConv), or the attention module after its conv (AttnConv2d)
        for slot in ('conv1_cfg', 'conv2_cfg'):
            layer = cfg.get(slot)
            if layer is not None:
                layer = layer.get('attention', layer)
                formats[name].add(layer['type'].split('.')[-1])
    return formats


def test_table_formats_exist_and_fill_their_modules():
    from mmattn.registry import MODELS
    for type_name in CONVERTER_FORMATS:
        assert type_name in MODELS, type_name
    listing = _converter_list()
    formats = parse_listing(listing)
    refused = [f for f, types in formats.items() if types is None]
    assert not set(refused) & set(converter_formats()), refused
    formats = {f: types for f, types in formats.items() if types is not None}
    present = [f for f in converter_formats() if f in formats]
    assert present, f'no format of the table in --list:\n{listing}'
    # a format of the table fills the modules the table says (formats not on this branch:
    # skipped)
    for fmt in present:
        assert {t for t, fmts in CONVERTER_FORMATS.items() if fmt in fmts} == formats[fmt], fmt
    # and every converter format's attention modules name it in the table
    for fmt, types in formats.items():
        for type_name in types:
            assert fmt in CONVERTER_FORMATS.get(type_name, ()), (fmt, type_name)


PRETRAINED_CONFIGS = sorted(
    p for p in os.listdir(osp.join(ROOT, 'configs', 'pretrained')) if p.endswith('.py')) \
    if osp.isdir(osp.join(ROOT, 'configs', 'pretrained')) else []


@requires_mmdet
@pytest.mark.parametrize('name', PRETRAINED_CONFIGS, ids=lambda p: p[:-3])
def test_pretrained_config_takes_its_converters_output(name):
    """The backbone of each configs/pretrained/ config has exactly the tensors (names, shapes)
    of the backbone its converter writes, so the converted file loads with nothing missing."""
    from mmengine.config import Config
    from mmattn.registry import MODELS
    if not osp.exists(osp.join(ROOT, 'tools', 'model_converters', 'formats')):
        pytest.skip('the converters are not on this branch')
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    try:
        from model_converters.formats import FORMATS
    finally:
        sys.path.pop(0)
    backbone = Config.fromfile(osp.join(ROOT, 'configs', 'pretrained', name)).model.backbone
    fmt = format_of_checkpoint(backbone.init_cfg.checkpoint)
    depth = int(re.search(r'_r(\d+)\.pth$', backbone.init_cfg.checkpoint).group(1))
    assert depth == backbone.depth
    if fmt not in FORMATS:
        pytest.skip(f'format {fmt} not on this branch')
    backbone.init_cfg = None
    if 'SyncBN' in str(backbone.get('norm_cfg')):
        backbone.norm_cfg = dict(type='BN', requires_grad=True)  # same tensors, no process group
    try:
        ours = MODELS.build(backbone).state_dict()
    except ImportError as err:
        pytest.skip(str(err))
    theirs = MODELS.build(FORMATS[fmt].backbone(depth)).state_dict()
    assert list(ours) == list(theirs)
    assert [v.shape for v in ours.values()] == [v.shape for v in theirs.values()]
    # and the same modules: every argument the converter's config states, ours states alike
    # (ours may add what holds no weights, e.g. a norm's SyncBN), and the backbone's own
    want = FORMATS[fmt].backbone(depth)
    for key, value in want.items():
        if key in ('plugins', 'stage_plugins'):
            got = backbone.get(key) or []
            assert len(got) == len(value), key
            for g, w in zip(got, value):
                assert _plain(g.get('stages', (True, ) * 4)) == \
                    _plain(w.get('stages', (True, ) * 4))
                assert g.get('position') == w.get('position')
                defaults = inspect.signature(MODELS.get(w['cfg']['type'].split('.')[-1]))
                for arg, v in w['cfg'].items():
                    mine = g['cfg'][arg] if arg in g['cfg'] else \
                        defaults.parameters[arg].default
                    assert _plain(mine) == _plain(v), (key, arg)
        elif key != 'type':
            assert _plain(backbone.get(key)) == _plain(value), key


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@requires_mmdet
def test_train_py_warns_once_for_mmdet_resnet_with_frozen_plugins(tmp_path):
    """End to end: tools/train.py on the toy detector with mmdet's own ResNet, CBAM plugins and
    frozen_stages=1 logs the warning once, naming layer1's three CBAMs."""
    from tests.test_tools.toy_run import TOY_CONFIG, make_toy_coco, run_tool
    root = make_toy_coco(tmp_path / 'toy', num_train=4, num_val=2).rstrip('/') + '/'
    config = tmp_path / 'cfg.py'
    config.write_text(f"""_base_ = {TOY_CONFIG!r}
model = dict(backbone=dict(_delete_=True, type='ResNet', depth=50, base_channels=16,
                           frozen_stages=1, norm_eval=False, plugins=[
    dict(cfg=dict(type='mmattn.CBAM', reduction=16), stages=(True, True, True, True),
         position='after_conv3')]))
train_dataloader = dict(batch_size=2, dataset=dict(data_root={root!r}))
val_dataloader = dict(dataset=dict(data_root={root!r}))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file={root + 'annotations/instances_val2017.json'!r})
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1, val_interval=2)
param_scheduler = []
default_hooks = dict(checkpoint=dict(interval=2))
""")
    proc = run_tool([sys.executable, osp.join(ROOT, 'tools', 'train.py'), str(config),
                     '--work-dir', str(tmp_path / 'w')], env_extra={'OMP_NUM_THREADS': '1'})
    out = proc.stdout + proc.stderr
    lines = [line for line in out.splitlines() if 'mmattn: ' in line]
    assert len(lines) == 1, out[-3000:]
    assert '3 attention module(s) (3 CBAM) cannot train' in lines[0]
    assert 'backbone.layer1.2.cbam' in lines[0] and 'layer2' not in lines[0]


def _extract_backbone():
    sys.path.insert(0, osp.join(ROOT, 'tools', 'model_converters'))
    try:
        import extract_backbone
    finally:
        sys.path.pop(0)
    return extract_backbone


def test_extract_backbone_keeps_the_backbone_and_drops_one_type(tmp_path):
    tool = _extract_backbone()
    t = {name: torch.full((2, ), float(i)) for i, name in enumerate([
        'backbone.conv1.weight', 'backbone.layer1.0.se.fc1.weight',
        'backbone.layer1.0.cbam.channel_gate.fc1.weight', 'backbone.layer2.1.se_2.fc2.bias',
        'backbone.layer2.1.sep.weight', 'neck.lateral_convs.0.conv.weight'])}
    src, dst = str(tmp_path / 'det.pth'), str(tmp_path / 'out' / 'bb.pth')
    torch.save(dict(state_dict=t, meta=dict()), src)
    tool.main([src, dst, '--drop-attention', 'SE'])
    kept = torch.load(dst)['state_dict']
    # SE modules are named se, se_2, ...; 'sep' is another layer; the neck is not backbone
    assert list(kept) == ['conv1.weight', 'layer1.0.cbam.channel_gate.fc1.weight',
                          'layer2.1.sep.weight']
    torch.testing.assert_close(kept['layer2.1.sep.weight'], t['backbone.layer2.1.sep.weight'])
    with pytest.raises(SystemExit, match='holds no GlobalContext weights'):
        tool.main([src, dst, '--drop-attention', 'GlobalContext'])
    with pytest.raises(SystemExit, match="no key of .* starts with 'head.'"):
        tool.main([src, dst, '--prefix', 'head.'])
