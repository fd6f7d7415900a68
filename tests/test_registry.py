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
    for name, cls in attention_classes().items():
        assert f'mmattn.{name} ' in out and cls.paper in out
    assert f'{len(attention_classes())} modules' in out


@pytest.mark.skipif(not has_module('mmdet'), reason='needs mmdet')
def test_plugin_type_reachable_from_mmdet_scope():
    from mmcv.cnn import build_plugin_layer
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        name, layer = build_plugin_layer(dict(type='mmattn.SE'), in_channels=32)
    assert name == 'se' and isinstance(layer, attention_classes()['SE'])
    assert mmattn.__version__
