"""The mmattn registry scope: reachable from configs, no clashes, listed by the CLI."""
import inspect
import subprocess
import sys

import pytest

import mmattn
from mmattn.models import attention_classes
from mmattn.registry import MODELS
from tests.helpers import has_module


def test_scope_is_a_child_of_mmengine_root():
    from mmengine.registry import MODELS as ROOT
    assert MODELS.scope == 'mmattn' and MODELS.parent is ROOT
    assert ROOT.get('mmattn.SE') is attention_classes()['SE']


def _other_names():
    names = set()
    from mmengine.registry import MODELS as ROOT
    names |= set(ROOT.module_dict)
    import mmcv.cnn
    names |= set(dir(mmcv.cnn))
    for lib in ('mmdet', 'mmseg'):
        if has_module(lib):
            registry = __import__(f'{lib}.registry', fromlist=['MODELS']).MODELS
            models = __import__(f'{lib}.models', fromlist=['*'])
            names |= set(registry.module_dict) | set(dir(models))
    if has_module('mmcv.ops') and has_module('mmdet'):
        import mmcv.ops
        names |= set(dir(mmcv.ops))
    return names


def test_no_name_clashes_with_openmmlab():
    clashes = sorted(set(MODELS.module_dict) & _other_names())
    assert not clashes, f'these mmattn names shadow OpenMMLab names: {clashes}'


def test_every_module_is_described():
    for name, cls in attention_classes().items():
        assert cls.paper, f'{name} names no paper'
        # A2-Nets has no released code: an empty `code` is allowed, a non-link is not.
        assert cls.code == '' or cls.code.startswith('https://'), f'{name}: code {cls.code!r}'
        assert cls.__doc__ and cls._abbr_ != 'attn', f'{name} lacks a docstring or _abbr_'


def _list(*args):
    return subprocess.run([sys.executable, '-m', 'mmattn', 'list', *args], capture_output=True,
                          text=True, check=True).stdout


def test_list_command_prints_every_registered_class():
    """Modules, backbones, neck and heads, each with its arguments and their defaults; the
    modules with their paper, code, placement and what they add to a ResNet-50."""
    from mmattn.models.factory import registered_classes, stored_resnet50_costs
    out = _list()
    lines = out.splitlines()
    # titles and signatures are wrapped at spaces to fit 100 columns: read them joined
    joined = ' '.join(out.split())
    classes = registered_classes()
    assert {'AttnResNet', 'AttnResNeXt', 'AttnResNetV1c', 'AttnNeck', 'AttnDAHead',
            'AttnCCHead', 'AttnOCRHead', 'AttnANNHead', 'SE'} <= set(classes)
    costs = stored_resnet50_costs()
    for name, cls in classes.items():
        assert any(line == f'mmattn.{name}' or line.startswith(f'mmattn.{name}  ')
                   for line in lines), name
        for p in inspect.signature(cls).parameters.values():
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                assert f' {p.name}' in joined or f'({p.name}' in joined, (name, p.name)
    for name, cls in attention_classes().items():
        assert cls.paper in joined and (cls.code or 'none released') in joined
        if cls.placement is None:
            assert f'where: not placed in a ResNet-50: {cls.no_placement}' in joined
            continue
        added = costs['added'].get(name)
        if added is None:  # a new module, before its figures are counted and written
            assert f'mmattn.{name}\n    where: ' in out and 'not counted yet' in joined
            continue
        share = 100 * added['params'] / costs['plain']['params']
        assert any(line.startswith(f'mmattn.{name}  +') and f'params ({share:.2f}%)' in line
                   for line in lines), name
        assert f'(x{added["instances"]})' in joined
    assert 'mmattn.SE  +2.53 M params (9.90%), +2.51 M FLOPs (0.06%) in ResNet-50' in lines
    assert ("args: SE(in_channels, *, reduction=16, act_cfg=dict(type='ReLU'), "
            "gate_cfg=dict(type='Sigmoid'), init_cfg=None)") in joined
    assert 'where: after conv3, every block of layer1-4 (x16)' in joined
    assert 'stage_plugins=None, freeze_plugins=False' in joined  # what AttnResNet adds
    assert f'{len(classes)} classes (' in out
    assert max(len(line) for line in lines if 'https://' not in line) <= 100


def test_list_command_family():
    out = _list('--family', 'channel')
    channel = [n for n, cls in attention_classes().items()
               if cls.__module__.startswith('mmattn.models.channel.')]
    assert f'{len(channel)} classes ({len(channel)} channel)' in out
    assert all(f'mmattn.{n}  ' in out for n in channel) and 'mmattn.AttnResNet' not in out
    out = _list('--family', 'backbone')
    assert 'mmattn.AttnResNet\n' in out and 'mmattn.SE' not in out.replace("'mmattn.SE'", '')
    proc = subprocess.run([sys.executable, '-m', 'mmattn', 'list', '--family', 'foo'],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ''
    assert ("unknown family 'foo'; the families are: channel, spatial, context, backbone, "
            'neck, head') in proc.stderr


def test_list_command_json():
    import json
    from mmattn.models.factory import registered_classes, stored_resnet50_costs
    listing = json.loads(_list('--json'))
    costs = stored_resnet50_costs()
    assert listing['resnet50'] == dict(costs['plain'], shape=[224, 224])
    rows = {row['name']: row for row in listing['classes']}
    assert list(rows) == list(registered_classes())
    se = rows['SE']
    assert (se['type'], se['family'], se['plugin']) == ('mmattn.SE', 'channel', True)
    assert se['arguments'][:2] == [dict(name='in_channels', keyword_only=False),
                                   dict(name='reduction', keyword_only=True, default=16)]
    assert se['placement'] == dict(plugins=[dict(cfg=dict(type='mmattn.SE'),
                                                 position='after_conv3')])
    assert se['resnet50'] == dict(costs['added']['SE'], params_percent=pytest.approx(9.9033, 1e-4),
                                  flops_percent=pytest.approx(0.0612, 1e-2))
    assert rows['ObjectContext']['resnet50'] is None
    assert rows['ObjectContext']['where'].startswith('decode head (AttnOCRHead)')
    da = rows['AttnDAHead']
    assert da['family'] == 'head' and 'paper' not in da
    assert [a['name'] for a in da['arguments']][:4] == ['pam_channels', 'lean', 'in_channels',
                                                        'channels']
    assert {a['name']: a.get('default') for a in rows['AttnResNet']['arguments']}[
        'freeze_plugins'] is False


def test_listing_takes_no_counting(monkeypatch, capsys):
    """The figures come from mmattn/models/resnet50_costs.py: listing counts nothing."""
    from mmattn import __main__ as cli
    from mmattn.utils import complexity

    def refuse(*args, **kwargs):
        raise AssertionError('python -m mmattn list counted FLOPs')

    monkeypatch.setattr(complexity, 'analyze_model', refuse)
    assert cli.main(['list']) == 0 and cli.main(['list', '--json']) == 0
    assert 'mmattn.SE  +2.53 M params' in capsys.readouterr().out


def test_stored_resnet50_costs_are_what_the_code_counts():
    """mmattn/models/resnet50_costs.py holds what count_resnet50_costs counts now, for every
    placed module; after changing a module or a placement, regenerate it with
    `python -m mmattn list --count --write`."""
    from mmattn.models.factory import count_resnet50_costs, stored_resnet50_costs
    stored = stored_resnet50_costs()
    counted = count_resnet50_costs()
    placed = sorted(n for n, cls in attention_classes().items() if cls.placement is not None)
    assert sorted(counted['added']) == placed, 'run: python -m mmattn list --count --write'
    assert stored == counted, 'run: python -m mmattn list --count --write'


def test_list_count_writes_the_figures_list_reads(tmp_path, monkeypatch):
    from mmattn import __main__ as cli
    from mmattn.models import factory
    fake = dict(shape=(224, 224), plain=dict(params=10, flops=20),
                added=dict(SE=dict(params=1, flops=2, instances=16)))
    path = tmp_path / 'resnet50_costs.py'
    write = factory.write_resnet50_costs
    monkeypatch.setattr(factory, 'count_resnet50_costs', lambda names=None: fake)
    monkeypatch.setattr(factory, 'write_resnet50_costs', lambda costs: write(costs, str(path)))
    assert cli.main(['list', '--count', '--write']) == 0
    # the file written is a module of the form the listing reads
    namespace = {}
    exec(path.read_text(), namespace)
    assert (namespace['SHAPE'], namespace['PLAIN'], namespace['ADDED']) == (
        (224, 224), fake['plain'], fake['added'])


def test_build_attention_from_a_config_dict():
    from mmattn import build_attention
    for cfg in (dict(type='ECA'), dict(type='mmattn.ECA')):
        m = build_attention(cfg, in_channels=64)
        assert type(m).__name__ == 'ECA' and m.in_channels == 64
    m = build_attention(dict(type='SE', in_channels=32, reduction=8))
    ref = build_attention('SE', 32, reduction=8)
    assert type(m) is type(ref) and [p.shape for p in m.parameters()] == \
        [p.shape for p in ref.parameters()]
    # keywords override the dict's values; the dict is not changed
    cfg = dict(type='SE', in_channels=32, reduction=8)
    m = build_attention(cfg, in_channels=64, reduction=4)
    assert (m.fc1.in_channels, m.fc1.out_channels) == (64, 16)
    assert cfg == dict(type='SE', in_channels=32, reduction=8)
    with pytest.raises(KeyError, match='needs a "type"'):
        build_attention(dict(reduction=4), in_channels=8)
    with pytest.raises(TypeError, match='in_channels is required'):
        build_attention(dict(type='SE'))
    with pytest.raises(TypeError, match='expected a module name or a config dict'):
        build_attention(3, in_channels=8)


@pytest.mark.skipif(not has_module('mmdet'), reason='needs mmdet')
def test_plugin_type_reachable_from_mmdet_scope():
    from mmcv.cnn import build_plugin_layer
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        name, layer = build_plugin_layer(dict(type='mmattn.SE'), in_channels=32)
    assert name == 'se' and isinstance(layer, attention_classes()['SE'])
    assert mmattn.__version__


# -- what a module declares for the tools ---------------------------------------------------------
def test_every_module_declares_what_the_tools_read():
    """Each class gives its ResNet-50 placement (or why it has none) and its attention maps
    (or why it has none): BaseAttention's attributes, read by the classifier, the model zoo
    and the attention-map tool."""
    from mmattn.models.factory import missing_declarations
    gaps = [gap for cls in attention_classes().values() for gap in missing_declarations(cls)]
    assert not gaps, '\n'.join(gaps)


def test_a_module_declaring_nothing_is_told_what_to_add():
    from mmattn.models import BaseAttention
    from mmattn.models.factory import missing_declarations

    class Bare(BaseAttention):
        """Declares nothing for the tools."""

    placement, maps = missing_declarations(Bare)
    assert placement.startswith('Bare declares no ResNet-50 placement: set its class attribute '
                                '`placement`')
    assert "dict(cfg=dict(type='mmattn.Bare'), position='after_conv3')" in placement
    assert '`no_placement`' in placement
    assert maps.startswith('Bare declares no attention maps')
    assert all(word in maps for word in ('`channel_gates`', '`spatial_gates`',
                                         '`attention_maps()`', '`no_maps`'))

    class Both(Bare):
        placement = dict(plugins=[])
        no_placement = 'a reason'
        channel_gates = {'channel gate': 'gate'}
        no_maps = 'another reason'

    assert missing_declarations(Both) == [
        'Both declares both `placement` and `no_placement`: keep one',
        'Both declares maps and `no_maps`: keep one']

    # the model zoo refuses it, before counting anything, with the same sentence
    from mmattn.utils.complexity import ConfigError
    from tests.helpers import load_tool
    zoo = load_tool('analysis', 'model_zoo.py')
    with pytest.raises(ConfigError, match='Bare declares no ResNet-50 placement: set its'):
        zoo.check_placements(dict(attention_classes(), Bare=Bare))


def test_placements_name_their_own_class():
    """A placement builds the class it belongs to (a copied placement would count another
    module)."""
    from mmattn.models.backbones import AUTHORS_PLACEMENT
    for name in AUTHORS_PLACEMENT:
        placement = AUTHORS_PLACEMENT[name]
        if 'conv2_cfg' in placement:  # a conv slot: the layer is the class, or holds it
            assert set(placement) <= {'conv2_cfg', 'groups', 'base_width'}, name
            cfg = placement['conv2_cfg']
            assert f'mmattn.{name}' in (cfg['type'], cfg.get('attention', {}).get('type')), name
            continue
        assert set(placement) <= {'plugins', 'stage_plugins'}, name
        specs = placement.get('plugins', []) + placement.get('stage_plugins', [])
        assert specs and all(s['cfg']['type'] == f'mmattn.{name}' for s in specs), name
    with pytest.raises(KeyError, match='ObjectContext has no ResNet-50 placement: decode head'):
        AUTHORS_PLACEMENT['ObjectContext']


# -- family packages import their files ------------------------------------------------------------
@pytest.mark.parametrize('family', ['channel', 'spatial', 'context'])
def test_family_package_imports_every_module_file(family):
    import importlib
    import pkgutil
    package = importlib.import_module(f'mmattn.models.{family}')
    files = [info.name for info in pkgutil.iter_modules(package.__path__)]
    assert files and all(f'mmattn.models.{family}.{f}' in sys.modules for f in files)
    registered = sorted(name for name, cls in attention_classes().items()
                        if cls.__module__.startswith(f'mmattn.models.{family}.'))
    assert package.__all__ == registered
    assert all(getattr(package, name) is attention_classes()[name] for name in registered)


def test_a_new_file_in_a_family_folder_registers_without_an_edit(tmp_path, monkeypatch):
    """A family package's own __init__.py, copied beside a new module file, imports and
    exports it."""
    import importlib
    import os.path as osp
    pkg = tmp_path / 'new_family'
    pkg.mkdir()
    init = osp.join(osp.dirname(mmattn.__file__), 'models', 'channel', '__init__.py')
    (pkg / '__init__.py').write_text(open(init).read())
    (pkg / 'new_gate.py').write_text(
        'import torch\n\n'
        'from mmattn.models import BaseAttention\n'
        'from mmattn.registry import MODELS\n\n\n'
        '@MODELS.register_module()\n'
        'class NewFamilyGate(BaseAttention):\n'
        '    """x * sigmoid(x)."""\n\n'
        '    def forward(self, x):\n'
        '        return x * torch.sigmoid(x)\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        package = importlib.import_module('new_family')
        assert package.__all__ == ['NewFamilyGate']
        assert MODELS.get('NewFamilyGate') is package.NewFamilyGate
    finally:
        MODELS._module_dict.pop('NewFamilyGate', None)
        for name in ('new_family', 'new_family.new_gate'):
            sys.modules.pop(name, None)
