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
