"""Bad input ends with a clear message that says what was expected and what to do."""
import sys

import pytest
import torch

from mmattn import build_attention
from mmattn.registry import MODELS
from tests.helpers import requires_mmdet
from tests.test_tools.toy_run import ROOT, run_tool


def test_unknown_module_name_in_plugin_config():
    with pytest.raises(KeyError, match=r"'SEE' is not a module of the 'mmattn' scope\. "
                       r"Did you mean mmattn\.SE"):
        MODELS.build(dict(type='SEE', in_channels=8))


@requires_mmdet
def test_unknown_module_name_in_mmdet_backbone():
    from mmdet.models.backbones import ResNet
    with pytest.raises(KeyError, match=r'Did you mean mmattn\.SE.*python -m mmattn list'):
        ResNet(depth=50, plugins=[dict(cfg=dict(type='mmattn.SEE'), stages=(True, ) * 4,
                                       position='after_conv3')])


def test_wrong_channel_count():
    m = build_attention('SE', 64)
    with pytest.raises(ValueError, match=r'SE\(in_channels=64\): expected x with 64 '
                       r'channels, got 32'):
        m(torch.randn(2, 32, 8, 8))


@pytest.mark.parametrize('shape', [(2, 64), (2, 64, 8), (1, 2, 64, 8, 8)])
def test_non_4d_input(shape):
    m = build_attention('SE', 64)
    with pytest.raises(ValueError, match=rf'expected x of shape \(N, C, H, W\) with C=64, '
                       rf'got a {len(shape)}-D tensor'):
        m(torch.randn(*shape))


def test_bad_in_channels():
    with pytest.raises(ValueError, match='in_channels must be a positive int'):
        build_attention('SE', 0)


@requires_mmdet
def test_missing_dataset_folder(tmp_path):
    proc = run_tool([sys.executable, f'{ROOT}/tools/train.py',
                     f'{ROOT}/configs/faster_rcnn_se_r50_coco.py', '--work-dir',
                     str(tmp_path), '--cfg-options',
                     f'train_dataloader.dataset.data_root={tmp_path}/nowhere/'], check=False)
    assert proc.returncode == 2
    assert 'nowhere/annotations/instances_train2017.json' in proc.stderr
    assert 'does not exist' in proc.stderr
    assert 'data/coco' in proc.stderr and 'make_toy_coco.py' in proc.stderr
    assert 'Traceback' not in proc.stderr


@pytest.mark.skipif(not __import__('tests.helpers', fromlist=['x']).has_module('mmseg'),
                    reason='needs mmseg')
def test_cityscapes_without_label_train_ids(tmp_path):
    from mmengine.config import Config

    from mmattn.utils import DatasetNotFoundError, check_dataset_paths
    for split in ('train', 'val'):
        (tmp_path / 'leftImg8bit' / split / 'aachen').mkdir(parents=True)
        gt = tmp_path / 'gtFine' / split / 'aachen'
        gt.mkdir(parents=True)
        (gt / 'aachen_000000_000019_gtFine_labelIds.png').write_bytes(b'')
    cfg = Config.fromfile(f'{ROOT}/configs/danet_r50-d8_cityscapes-512x1024_40k.py')
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = str(tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r'no \*_gtFine_labelTrainIds\.png files '
                       r'under .*gtFine/train.*tools/dataset_converters/cityscapes\.py'):
        check_dataset_paths(cfg)


# -- a model that does not build, or fails in its first step, leaves nothing behind ----------------

TOY_SE = f'{ROOT}/configs/toy/faster_rcnn_se_r50_toy-coco.py'
needs_toy = pytest.mark.skipif(not __import__('tests.helpers', fromlist=['x']).has_module(
    'sklearn'), reason='the toy data generators draw scikit-learn\'s images')


@pytest.fixture(scope='module')
def toy_coco(tmp_path_factory):
    from tests.helpers import load_tool
    gen = load_tool('dataset_converters', 'make_toy_coco.py')
    root = str(tmp_path_factory.mktemp('data') / 'coco')
    gen.generate(root, num_train=2, num_val=1)
    return root


@requires_mmdet
@needs_toy
@pytest.mark.parametrize('option,says', [
    ('model.backbone.plugins.0.cfg.type=mmattn.SEE', "'SEE' is not a module of the 'mmattn' "
     "scope. Did you mean mmattn.SE"),
    ('model.backbone.plugins.0.position=after_conv4', 'AttnResNet: plugins[0]: "position" must '
     "be one of ('after_conv1', 'after_conv2', 'after_conv3', 'after_block'), got "
     "'after_conv4'"),
])
def test_a_model_that_does_not_build_writes_nothing(option, says, toy_coco, tmp_path, capsys):
    from tests.helpers import load_tool
    train = load_tool('train.py', name='train_tool')
    work = tmp_path / 'work'
    with pytest.raises(SystemExit) as info:
        train.main([TOY_SE, '--data-root', toy_coco, '--work-dir', str(work), '--cfg-options',
                    option])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.startswith(f'error: {TOY_SE}: the model does not build: ') and says in err, err
    assert len(err.strip().splitlines()) == 1
    assert not work.exists()


@requires_mmdet
@needs_toy
def test_a_first_step_that_fails_removes_what_the_run_wrote(toy_coco, tmp_path):
    """A head whose in_channels is not its input's width builds, and fails in the first
    forward pass: after the work dir, the log and the config copy were written."""
    cmd = [sys.executable, f'{ROOT}/tools/train.py', TOY_SE, '--data-root', toy_coco,
           '--cfg-options', 'model.roi_head.bbox_head.in_channels=99', '--work-dir']
    work = tmp_path / 'new'
    proc = run_tool(cmd + [str(work)], check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: the run failed before its first iteration ended '
                           '(RuntimeError: mat1 and mat2 shapes cannot be multiplied'), last
    assert last.endswith(f'removed what it wrote: {work}')
    assert not work.exists()

    # a work dir with an earlier run in it: only what this run wrote goes
    work = tmp_path / 'earlier'
    (work / '20250101_000000' / 'vis_data').mkdir(parents=True)
    earlier = {'epoch_1.pth': b'a checkpoint', 'last_checkpoint': b'epoch_1.pth',
               'faster_rcnn_se_r50_toy-coco.py': b'# the earlier run\'s config',
               '20250101_000000/20250101_000000.log': b'the earlier log'}
    for name, data in earlier.items():
        (work / name).write_bytes(data)
    proc = run_tool(cmd + [str(work), '--overwrite'], check=False)
    assert proc.returncode == 1 and 'removed what it wrote' in proc.stderr
    left = {str(p.relative_to(work)): p.read_bytes() for p in work.rglob('*') if p.is_file()}
    assert left == earlier
    assert sorted(p.name for p in work.iterdir()) == sorted(
        ['20250101_000000', 'epoch_1.pth', 'faster_rcnn_se_r50_toy-coco.py', 'last_checkpoint'])
