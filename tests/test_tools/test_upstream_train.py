"""A config that imports mmattn through ``custom_imports`` trains and resumes under mmdet's and
mmseg's own ``tools/train.py`` (the copies their packages ship under ``.mim/tools``).

Resuming reads mmengine's checkpoint with torch's safe loader; the allow-list that mmattn's
import adds is what lets it (the control: without mmattn the same checkpoint is refused).
"""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from tests.helpers import has_module, load_tool
from tests.test_tools.toy_run import ROOT, make_toy_coco, run_tool

TOY = osp.join(ROOT, 'configs', 'toy')
IMPORTS = "custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)\n"


def upstream_train(package):
    """The train.py that ``package`` (mmdet, mmseg) ships, or None."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        return None
    path = osp.join(osp.dirname(spec.origin), '.mim', 'tools', 'train.py')
    return path if osp.isfile(path) else None


def refused_without_mmattn(ckpt):
    """Whether torch's safe loader, in a fresh process without mmattn, refuses ``ckpt``."""
    code = ('import pickle, sys, torch\n'
            'try:\n'
            f'    torch.load({str(ckpt)!r})\n'
            'except pickle.UnpicklingError:\n'
            '    sys.exit(3)\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert 'mmattn' not in proc.stderr, proc.stderr[-2000:]
    return proc.returncode == 3


def train_then_resume(train_py, cfg, work, first, second):
    """Train to ``first`` (cfg options), then resume from the work dir to ``second``."""
    env = dict(OMP_NUM_THREADS='1')
    run_tool([sys.executable, train_py, cfg, '--work-dir', str(work), '--cfg-options', *first],
             env)
    proc = run_tool([sys.executable, train_py, cfg, '--work-dir', str(work), '--resume',
                     '--cfg-options', *second], env)
    return proc.stdout + proc.stderr


@pytest.mark.skipif(upstream_train('mmdet') is None, reason="needs mmdet's tools/train.py")
def test_mmdet_train_py_trains_and_resumes(tmp_path):
    data = make_toy_coco(tmp_path / 'data', num_train=2, num_val=1) + '/'
    cfg = tmp_path / 'det.py'
    cfg.write_text(
        f"_base_ = {osp.join(TOY, 'faster_rcnn_se_r50_toy-coco.py')!r}\n" + IMPORTS
        + f"train_dataloader = dict(batch_size=2, dataset=dict(data_root={data!r}))\n"
        f"val_dataloader = dict(dataset=dict(data_root={data!r}))\n"
        "test_dataloader = val_dataloader\n"
        f"val_evaluator = dict(ann_file={data + 'annotations/instances_val2017.json'!r})\n"
        "test_evaluator = val_evaluator\n"
        "default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2))\n")
    work = tmp_path / 'work'
    out = train_then_resume(upstream_train('mmdet'), str(cfg), work,
                            ['train_cfg.max_epochs=1', 'train_cfg.val_interval=9'],
                            ['train_cfg.max_epochs=2', 'train_cfg.val_interval=9'])
    assert 'resumed epoch: 1' in out, out[-3000:]
    assert refused_without_mmattn(work / 'epoch_1.pth')
    import mmattn  # noqa: F401  (the allow-list)
    assert torch.load(work / 'epoch_2.pth')['meta']['epoch'] == 2


@pytest.mark.skipif(upstream_train('mmseg') is None or not has_module('sklearn'),
                    reason="needs mmseg's tools/train.py and scikit-learn (the toy data)")
def test_mmseg_train_py_trains_and_resumes(tmp_path):
    data = str(tmp_path / 'toy_cityscapes') + '/'
    load_tool('dataset_converters', 'make_toy_cityscapes.py').generate(
        data, num_train=2, num_val=1, height=64, width=128)
    cfg = tmp_path / 'seg.py'
    cfg.write_text(
        f"_base_ = {osp.join(TOY, 'danet_r18-d8_toy-cityscapes.py')!r}\n" + IMPORTS
        + f"train_dataloader = dict(batch_size=2, dataset=dict(data_root={data!r}))\n"
        f"val_dataloader = dict(dataset=dict(data_root={data!r}))\n"
        "test_dataloader = val_dataloader\n"
        "default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2))\n")
    work = tmp_path / 'work'
    out = train_then_resume(upstream_train('mmseg'), str(cfg), work,
                            ['train_cfg.max_iters=1', 'train_cfg.val_interval=9'],
                            ['train_cfg.max_iters=2', 'train_cfg.val_interval=9'])
    assert 'resumed epoch: 0, iter: 1' in out, out[-3000:]
    assert refused_without_mmattn(work / 'iter_1.pth')
    import mmattn  # noqa: F401  (the allow-list)
    assert torch.load(work / 'iter_2.pth')['meta']['iter'] == 2
