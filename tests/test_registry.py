"""The mmattn registry scope: reachable from configs, no clashes, listed by the CLI."""
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


def test_list_command_prints_every_module():
    out = subprocess.run([sys.executable, '-m', 'mmattn', 'list'], capture_output=True,
                         text=True, check=True).stdout
    # titles are wrapped at spaces to fit 100 columns: read them with the lines joined
    joined = ' '.join(out.split())
    for name, cls in attention_classes().items():
        assert f'mmattn.{name} ' in out and cls.paper in joined
        assert (cls.code or '-') in out.split()
    assert f'{len(attention_classes())} modules' in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_list_command_family():
    run = [sys.executable, '-m', 'mmattn', 'list', '--family']
    out = subprocess.run(run + ['channel'], capture_output=True, text=True, check=True).stdout
    channel = [n for n, cls in attention_classes().items()
               if cls.__module__.startswith('mmattn.models.channel.')]
    assert f'{len(channel)} modules' in out and all(f'mmattn.{n} ' in out for n in channel)
    proc = subprocess.run(run + ['foo'], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ''
    assert "unknown family 'foo'; the families are: channel, context, spatial" in proc.stderr


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
