"""The up-front check of ``torchvision://`` weights (mmattn/utils/pretrained.py).

Every ``configs/faster_rcnn_*`` inherits ``init_cfg=torchvision://resnet50``; without a working
torchvision mmengine fails inside ``init_weights``. tools/train.py must say so before it writes
anything, naming the setting, and the ways out it names must work.
"""
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config

import mmattn.utils.pretrained as pretrained
from mmattn.utils import PretrainedUnavailableError, check_pretrained_available
from mmattn.utils.pretrained import find_torchvision_checkpoints, torchvision_problem
from tests.helpers import has_module, requires_mmdet
from tests.test_tools.toy_run import ROOT, make_toy_coco, run_tool

SE_COCO = osp.join(ROOT, 'configs', 'faster_rcnn_se_r50_coco.py')
TOY_SE = osp.join(ROOT, 'configs', 'toy', 'faster_rcnn_se_r50_toy-coco.py')
# what torchvision 0.12, and so mmengine's own table, lists for 'resnet50'
RESNET50_URL = 'https://download.pytorch.org/models/resnet50-0676ba61.pth'


def _torchvision_works():
    try:
        import torchvision
        torchvision.ops.nms(torch.zeros(1, 4), torch.ones(1), 0.5)
    except Exception:  # noqa: BLE001
        return False
    return True


def test_finds_checkpoints_in_dicts_lists_and_load_from():
    cfg = Config(dict(
        model=dict(
            backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
            neck=[dict(init_cfg=[dict(type='Xavier'),
                                 dict(type='Pretrained', checkpoint='modelzoo://vgg16')])],
            head=dict(init_cfg=dict(type='Pretrained', checkpoint='/local/head.pth'))),
        load_from='torchvision://resnet18'))
    assert find_torchvision_checkpoints(cfg) == [
        ('model.backbone.init_cfg.checkpoint', 'torchvision://resnet50'),
        ('model.neck.0.init_cfg.1.checkpoint', 'modelzoo://vgg16'),
        ('load_from', 'torchvision://resnet18'),
    ]
    assert find_torchvision_checkpoints(Config(dict(model=dict(init_cfg=None)))) == []


@requires_mmdet
def test_real_and_toy_configs():
    assert find_torchvision_checkpoints(Config.fromfile(SE_COCO)) == [
        ('model.backbone.init_cfg.checkpoint', 'torchvision://resnet50')]
    # the toy configs train from scratch and must not need torchvision
    assert find_torchvision_checkpoints(Config.fromfile(TOY_SE)) == []


def test_problem_matches_what_import_does():
    problem = torchvision_problem()
    if _torchvision_works():
        assert problem is None
    else:
        assert problem is not None and 'torchvision' in problem
        if not has_module('torchvision'):
            assert problem == "ModuleNotFoundError: No module named 'torchvision'"


def test_message_names_config_key_cause_and_remedies(monkeypatch):
    monkeypatch.setattr(pretrained, 'torchvision_problem',
                        lambda: "ModuleNotFoundError: No module named 'torchvision'")
    cfg = Config(dict(model=dict(backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))))
    with pytest.raises(PretrainedUnavailableError) as info:
        check_pretrained_available(cfg, 'configs/x.py')
    msg = str(info.value)
    for part in ('configs/x.py', "model.backbone.init_cfg.checkpoint = 'torchvision://resnet50'",
                 "No module named 'torchvision'", f'torch=={torch.__version__}',
                 RESNET50_URL,  # mmengine's own address for the name
                 '--cfg-options model.backbone.init_cfg.checkpoint=PATH/resnet50-0676ba61.pth',
                 '--cfg-options model.backbone.init_cfg=None'):
        assert part in msg, (part, msg)
    if torch.__version__.startswith('2.13.'):
        assert 'torchvision==0.28.*' in msg  # torchvision 0.28.0 pins torch==2.13.0


def test_nothing_asked_nothing_imported(monkeypatch):
    def boom():
        raise AssertionError('torchvision looked up for a config that needs none')

    monkeypatch.setattr(pretrained, 'torchvision_problem', boom)
    check_pretrained_available(Config(dict(model=dict(backbone=dict(init_cfg=None)))))
    # with torchvision working, a torchvision:// config passes
    monkeypatch.setattr(pretrained, 'torchvision_problem', lambda: None)
    check_pretrained_available(Config(dict(load_from='torchvision://resnet50')))


@requires_mmdet
def test_file_remedy_loads_the_weights(tmp_path):
    """The hint's --cfg-options key, given a local file, loads that file into the backbone."""
    from mmengine.registry import init_default_scope

    import mmattn  # noqa: F401
    from mmattn.registry import MODELS
    init_default_scope('mmdet')
    cfg = Config.fromfile(TOY_SE)
    backbone_cfg = cfg.model.backbone.copy()
    # a torchvision-style file: the backbone's weights under their own names, no prefix
    source = MODELS.build(dict(backbone_cfg, init_cfg=None))
    for p in source.parameters():
        torch.nn.init.normal_(p)
    torch.save(source.state_dict(), tmp_path / 'resnet.pth')

    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint='torchvision://resnet50')
    [(key, _)] = find_torchvision_checkpoints(cfg)
    cfg.merge_from_dict({key: str(tmp_path / 'resnet.pth')})
    check_pretrained_available(cfg)  # no torchvision:// left
    target = MODELS.build(cfg.model.backbone)
    target.init_weights()
    for (name, a), b in zip(target.state_dict().items(), source.state_dict().values()):
        assert torch.equal(a, b), name


@requires_mmdet
@pytest.mark.skipif(_torchvision_works(), reason='torchvision works here: nothing to refuse')
def test_train_refuses_before_writing(tmp_path):
    """The real SE config, its data found (the toy set in COCO's layout), no torchvision."""
    data = make_toy_coco(tmp_path / 'toy_coco', num_train=2, num_val=1)
    work = tmp_path / 'work'
    proc = run_tool([sys.executable, 'tools/train.py', SE_COCO, '--work-dir', str(work),
                     '--cfg-options', f'train_dataloader.dataset.data_root={data}/',
                     f'val_dataloader.dataset.data_root={data}/',
                     f'val_evaluator.ann_file={data}/annotations/instances_val2017.json'],
                    check=False, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    err = proc.stderr
    assert err.startswith(f'error: {SE_COCO} asks for pretrained weights through torchvision')
    assert "model.backbone.init_cfg.checkpoint = 'torchvision://resnet50'" in err
    assert RESNET50_URL in err and 'Traceback' not in err
    assert not work.exists()
