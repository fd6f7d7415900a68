"""Formats ``mmpretrain-se`` / ``mmpretrain-se-x32x4d`` against mmpretrain's own classes.

The source networks are mmpretrain's ``SEResNet`` and ``SEResNeXt`` themselves (the installed
mmpretrain 1.2.0's code), with random weights and BN statistics, saved as mmpretrain saves an
``ImageClassifier`` (``{'meta', 'state_dict'}``, backbone under ``backbone.``, linear head under
``head.fc``); ``convert.py``'s own code converts the file, and our backbone, built from the
config it prints, must give the source's four stage outputs to 1e-10 (float64, relative to
their largest value), in eval and in train mode.

mmpretrain 1.2.0's package imports torchvision everywhere (datasets, metrics, box utilities),
and no torchvision wheel imports beside a CPU-only torch; its backbone files import none of
that. Where ``mmpretrain.models`` cannot be imported, :func:`mmpretrain_backbones` loads those
files of the installed package as they are, without the package's ``__init__``.
"""
import importlib
import importlib.util
import io
import os.path as osp
import sys
import types
from contextlib import redirect_stderr, redirect_stdout

import pytest
import torch

from tests.helpers import randomize_, requires_mmdet

pytestmark = [requires_mmdet,
              pytest.mark.skipif(importlib.util.find_spec('mmpretrain') is None,
                                 reason='needs mmpretrain (the source networks are its classes)')]

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# 32: the narrowest ResNet whose SE widths (C // 16) are all multiples of 8, as mmpretrain's
# SELayer rounds them (make_divisible(C // 16, 8)) and as they are at full width
BASE = 32
TOLERANCE = 1e-10


def _tool():
    if osp.join(ROOT, 'tools') not in sys.path:
        sys.path.insert(0, osp.join(ROOT, 'tools'))
    return importlib.import_module('model_converters.convert')


def mmpretrain_backbones():
    """mmpretrain's ``SEResNet`` and ``SEResNeXt`` classes."""
    try:
        from mmpretrain.models.backbones import SEResNet, SEResNeXt
        return SEResNet, SEResNeXt
    except Exception:  # noqa: BLE001  (mmpretrain's package needs a working torchvision)
        pass
    root = osp.dirname(importlib.util.find_spec('mmpretrain').origin)
    # empty packages in place of mmpretrain.models and the two subpackages the backbone files
    # import from, for the time of the import only
    stubs = ('mmpretrain.models', 'mmpretrain.models.backbones', 'mmpretrain.models.utils')
    saved = {name: sys.modules.pop(name) for name in list(sys.modules)
             if name == stubs[0] or name.startswith(stubs[0] + '.')}
    try:
        for name in stubs:
            package = types.ModuleType(name)
            package.__path__ = [osp.join(root, *name.split('.')[1:])]
            sys.modules[name] = package
        seresnet = importlib.import_module('mmpretrain.models.backbones.seresnet')
        seresnext = importlib.import_module('mmpretrain.models.backbones.seresnext')
        return seresnet.SEResNet, seresnext.SEResNeXt
    finally:
        for name in [n for n in sys.modules if n == stubs[0] or n.startswith(stubs[0] + '.')]:
            del sys.modules[name]
        sys.modules.update(saved)


def source_network(fmt, depth, seed=0):
    """mmpretrain's network for the format, float64, random weights and BN statistics."""
    SEResNet, SEResNeXt = mmpretrain_backbones()
    kwargs = dict(depth=depth, base_channels=BASE, stem_channels=BASE, out_indices=(0, 1, 2, 3))
    net = SEResNeXt(groups=32, width_per_group=4, **kwargs) if fmt.endswith('x32x4d') else \
        SEResNet(**kwargs)
    return randomize_(net.double(), seed=seed)


def save_classifier(net, path, num_classes=10):
    """The network as mmpretrain saves an ImageClassifier: backbone., head.fc."""
    state = {f'backbone.{k}': v for k, v in net.state_dict().items()}
    gen = torch.Generator().manual_seed(1)
    width = BASE * 4 * 8
    state['head.fc.weight'] = torch.randn(num_classes, width, generator=gen)
    state['head.fc.bias'] = torch.randn(num_classes, generator=gen)
    torch.save({'meta': {'mmpretrain_version': '1.2.0', 'epoch': 100}, 'state_dict': state},
               path)
    return str(path)


def main(*args):
    """(exit status, stdout, stderr) of ``convert.py ARGS`` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = _tool().main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()


def assert_one_line(err, *words):
    lines = err.strip().split('\n')
    assert len(lines) == 1 and lines[0].startswith('error: '), err
    for w in words:
        assert str(w) in lines[0], (w, lines[0])
    assert 'Traceback' not in err, err


def _relative(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize('fmt,depth', [('mmpretrain-se', 50), ('mmpretrain-se', 101),
                                       ('mmpretrain-se-x32x4d', 50)])
def test_converted_backbone_equals_mmpretrain_network(fmt, depth, tmp_path):
    from mmengine.runner import load_checkpoint

    from mmattn.models.layers import fast_paths
    net = source_network(fmt, depth)
    src = save_classifier(net, tmp_path / f'{fmt}{depth}.pth')
    dst = str(tmp_path / 'converted.pth')
    with redirect_stdout(io.StringIO()):
        cfg = _tool().convert(fmt, src, dst, overrides=dict(base_channels=BASE))
    common = importlib.import_module('model_converters.common')
    # float64 before loading: the file holds the source's float64 tensors
    ours = common.build_backbone(dict(cfg, out_indices=(0, 1, 2, 3), norm_eval=False)).double()
    load_checkpoint(ours, dst, strict=True, logger='silent')

    x = torch.randn(2, 3, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    for train in (False, True):
        for fast in (True, False):
            net.train(train)
            ours.train(train)
            with torch.no_grad():
                expected = net(x)
                with fast_paths(fast):
                    actual = ours(x)
            assert len(actual) == len(expected) == 4
            for i, (a, e) in enumerate(zip(actual, expected)):
                assert a.shape == e.shape
                assert _relative(a, e) <= TOLERANCE, (
                    f'{fmt}-{depth}, {"train" if train else "eval"} mode, fast paths '
                    f'{"on" if fast else "off"}: stage {i + 1} differs by {_relative(a, e):.3g}')


def test_report_maps_every_tensor(tmp_path):
    net = source_network('mmpretrain-se', 50)
    src = save_classifier(net, tmp_path / 'seresnet50.pth')
    out = io.StringIO()
    with redirect_stdout(out):
        _tool().convert('mmpretrain-se', src, str(tmp_path / 'dst.pth'),
                        overrides=dict(base_channels=BASE))
    out = out.getvalue()
    # SE: 16 blocks x (fc1, fc2) x (weight, bias); the head's two tensors dropped
    assert 'se: 64 tensors' in out
    assert 'dropped 2 (ImageNet classifier head (LinearClsHead)): head.fc.weight, head.fc.bias' \
        in out
    assert "'type': 'mmattn.AttnResNet'" in out and "'mmattn.SE'" in out


def test_mmpretrain_checkpoint_given_to_another_format_names_the_right_one(tmp_path):
    src = save_classifier(source_network('mmpretrain-se', 50), tmp_path / 'seresnet50.pth')
    for other in ('timm-se', 'cadene-se', 'cbam'):
        rc, _, err = main(other, src, tmp_path / 'dst.pth')
        assert rc == 1
        assert_one_line(err, src, 'mmpretrain SE classifier', 'convert.py mmpretrain-se')
    assert not (tmp_path / 'dst.pth').exists()


def test_resnext_given_to_the_resnet_format_names_the_right_one(tmp_path):
    src = save_classifier(source_network('mmpretrain-se-x32x4d', 50), tmp_path / 'x.pth')
    rc, _, err = main('mmpretrain-se', src, tmp_path / 'dst.pth')
    assert rc == 1
    assert_one_line(err, src, "'mmpretrain-se-x32x4d'")


def test_another_depth_is_refused_in_one_line(tmp_path):
    net = source_network('mmpretrain-se', 101)
    src = save_classifier(net, tmp_path / 'seresnet101.pth')
    rc, _, err = main('mmpretrain-se', src, tmp_path / 'dst.pth', '--depth', '50')
    assert rc == 1
    assert_one_line(err, '--depth 50', 'depth 101')
    # blocks per stage of no depth the format has (a ResNet-26's two a stage)
    state = torch.load(src, weights_only=True)['state_dict']
    state = {k: v for k, v in state.items()
             if not (k.startswith('backbone.layer') and int(k.split('.')[2]) >= 2)}
    torch.save({'state_dict': state}, tmp_path / 'resnet26.pth')
    rc, _, err = main('mmpretrain-se', tmp_path / 'resnet26.pth', tmp_path / 'dst.pth')
    assert rc == 1
    assert_one_line(err, '(2, 2, 2, 2)', 'matches none')
    assert not (tmp_path / 'dst.pth').exists()


def test_what_is_not_an_mmpretrain_se_classifier_is_refused(tmp_path):
    state = torch.load(save_classifier(source_network('mmpretrain-se', 50),
                                       tmp_path / 'src.pth'), weights_only=True)['state_dict']
    plain = {k: v for k, v in state.items() if '.se_layer.' not in k}
    torch.save({'state_dict': plain}, tmp_path / 'resnet50.pth')
    rc, _, err = main('mmpretrain-se', tmp_path / 'resnet50.pth', tmp_path / 'dst.pth')
    assert rc == 1
    assert_one_line(err, 'without SE layers', "prefix='backbone.'")

    detector = {k: v for k, v in state.items() if k.startswith('backbone.')}
    detector['rpn_head.rpn_conv.weight'] = torch.zeros(4, 4, 3, 3)
    torch.save({'state_dict': detector}, tmp_path / 'detector.pth')
    rc, _, err = main('mmpretrain-se', tmp_path / 'detector.pth', tmp_path / 'dst.pth')
    assert rc == 1
    assert_one_line(err, 'a detector checkpoint', 'rpn_head.', 'not an mmpretrain classifier')
    assert not (tmp_path / 'dst.pth').exists()


def test_configs_load_the_converted_backbone():
    """configs/pretrained/*mmpretrain* build the backbone the format writes: the same tensors,
    and the stem max-pool of mmpretrain's ResNet (PyTorch's, not Caffe's)."""
    from mmengine.config import Config
    _tool()
    common = importlib.import_module('model_converters.common')
    formats = importlib.import_module('model_converters.formats').FORMATS
    for name, fmt_name, depth in (('faster_rcnn_se-mmpretrain_r50_coco.py', 'mmpretrain-se', 50),
                                  ('faster_rcnn_se-mmpretrain_x101-32x4d_coco.py',
                                   'mmpretrain-se-x32x4d', 101)):
        cfg = Config.fromfile(osp.join(ROOT, 'configs', 'pretrained', name)).model.backbone
        assert cfg.init_cfg.type == 'Pretrained' and cfg.freeze_plugins
        ours = common.build_backbone(cfg.to_dict())
        theirs = common.build_backbone(formats[fmt_name].backbone(depth))
        assert {k: v.shape for k, v in ours.state_dict().items()} == \
            {k: v.shape for k, v in theirs.state_dict().items()}, name
        assert (ours.maxpool.padding, ours.maxpool.ceil_mode) == (1, False), name
