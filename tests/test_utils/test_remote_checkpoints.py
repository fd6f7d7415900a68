"""Every checkpoint mmengine fetches by a URL scheme is checked before a run writes anything
(mmattn/utils/pretrained.py: check_remote_checkpoints), with the ways on named by the config's
key: the file put in torch's cache (the config then works unchanged), the file passed with
--cfg-options, or the key set to None."""
import os
import os.path as osp
import sys
import urllib.error

import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import CheckpointLoader

import mmattn.utils.pretrained as pretrained
from mmattn.utils import PretrainedUnavailableError, check_remote_checkpoints
from tests.helpers import has_module, load_tool, requires_mmseg
from tests.test_tools.toy_run import ROOT, run_tool

DANET = osp.join(ROOT, 'configs', 'danet_r50-d8_cityscapes-512x1024_40k.py')
V1C_URL = 'https://download.openmmlab.com/pretrain/third_party/resnet50_v1c-2cccc1ad.pth'
# an address no download gets through: a proxy on a port nothing listens on
OFFLINE = dict(https_proxy='http://127.0.0.1:9', http_proxy='http://127.0.0.1:9',
               HTTPS_PROXY='http://127.0.0.1:9', HTTP_PROXY='http://127.0.0.1:9')


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch cache, and no network."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setattr(torch.hub, '_hub_dir', None)

    def offline(url, dst):
        raise urllib.error.URLError('[Errno -2] Name or service not known')

    monkeypatch.setattr(pretrained, '_fetch', offline)
    return tmp_path / 'torch'


def test_finds_pretrained_init_cfgs_and_load_from():
    cfg = Config(dict(
        model=dict(pretrained='open-mmlab://resnet50_v1c',
                   backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='mmcls://resnet50')),
                   neck=[dict(init_cfg=[dict(type='Xavier'), dict(
                       type='Pretrained', checkpoint='https://example.org/neck.pth')])],
                   head=dict(init_cfg=dict(type='Pretrained', checkpoint='/local/head.pth'))),
        load_from='s3://bucket/model.pth'))
    assert pretrained.find_remote_checkpoints(cfg) == [
        ('model.backbone.init_cfg.checkpoint', 'mmcls://resnet50'),
        ('model.neck.0.init_cfg.1.checkpoint', 'https://example.org/neck.pth'),
        ('model.pretrained', 'open-mmlab://resnet50_v1c'),
        ('load_from', 's3://bucket/model.pth')]


def test_every_scheme_mmengine_registers_is_checked(torch_home):
    """Each prefix of mmengine's CheckpointLoader gets an answer, not an exception: the
    schemes served over HTTP are looked up in mmengine's tables and downloaded into the cache
    (refused here: no network); the others need their client (pavi, petrel)."""
    examples = {'torchvision://': 'torchvision://resnet50', 'modelzoo://': 'modelzoo://resnet50',
                'open-mmlab://': 'open-mmlab://resnet50_v1c',
                'openmmlab://': 'openmmlab://resnet50_v1c', 'mmcls://': 'mmcls://resnet50',
                'http://': 'http://example.org/a.pth', 'https://': 'https://example.org/a.pth',
                'pavi://': 'pavi://model/a.pth', r'(\S+\:)?s3://': 's3://bucket/a.pth',
                r'(\S+\:)?petrel://': 'petrel://bucket/a.pth'}
    schemes = [p for p in CheckpointLoader._schemes if p]
    assert sorted(schemes) == sorted(examples), 'mmengine registers a scheme not tested here'
    for scheme, checkpoint in examples.items():
        problem, where = pretrained._problem_with(checkpoint)
        assert problem, checkpoint  # nothing can be fetched here
        if scheme in ('open-mmlab://', 'openmmlab://', 'mmcls://', 'http://', 'https://'):
            assert where.startswith('http') and 'cannot be downloaded (URLError' in problem
        if scheme in ('torchvision://', 'modelzoo://') and not has_module('torchvision'):
            assert "No module named 'torchvision'" in problem
    problem, _ = pretrained._problem_with('open-mmlab://resnet50_v1x')
    assert problem.startswith("'resnet50_v1x' is not a name mmengine knows for open-mmlab:// "
                              '(did you mean open-mmlab://resnet50_v1c')


@requires_mmseg
def test_message_names_the_key_the_address_and_three_ways(torch_home):
    with pytest.raises(PretrainedUnavailableError) as info:
        check_remote_checkpoints(Config.fromfile(DANET), 'configs/danet.py')
    cache = osp.join(str(torch_home), 'hub', 'checkpoints')
    assert str(info.value).splitlines() == [
        'configs/danet.py starts from weights that cannot be loaded here:',
        f"  model.pretrained = 'open-mmlab://resnet50_v1c' ({V1C_URL}): it cannot be "
        'downloaded (URLError: <urlopen error [Errno -2] Name or service not known>)',
        'Either:',
        f'  - download {V1C_URL} into {cache}/ (where mmengine looks first: the config then '
        'works unchanged);',
        '  - or download it and pass --cfg-options '
        'model.pretrained=PATH/resnet50_v1c-2cccc1ad.pth;',
        '  - or start without them (from scratch, or when --resume or another checkpoint '
        'brings every weight anyway): --cfg-options model.pretrained=None.']
    assert not osp.exists(cache), 'a failed check left a folder in the cache'


@requires_mmseg
def test_each_way_on_works(torch_home, tmp_path):
    cfg = Config.fromfile(DANET)
    # None, and a local file: nothing left to fetch
    for value in (None, str(tmp_path / 'resnet50_v1c.pth')):
        other = Config.fromfile(DANET)
        other.merge_from_dict({'model.pretrained': value})
        check_remote_checkpoints(other)
    # the file in torch's cache: the config passes unchanged, and mmengine loads that file
    weights = {'conv1.weight': torch.randn(2, 3, 1, 1)}
    cached = pretrained.cached_checkpoint_path(V1C_URL)
    assert cached == osp.join(str(torch_home), 'hub', 'checkpoints', 'resnet50_v1c-2cccc1ad.pth')
    os.makedirs(osp.dirname(cached))
    torch.save(weights, cached)
    check_remote_checkpoints(cfg)
    loaded = CheckpointLoader.load_checkpoint('open-mmlab://resnet50_v1c', map_location='cpu')
    assert torch.equal(loaded['conv1.weight'], weights['conv1.weight'])
    # a download cut short in the cache is fetched again (and refused here)
    with open(cached, 'r+b') as f:
        f.truncate(100)
    with pytest.raises(PretrainedUnavailableError, match='cannot be downloaded'):
        check_remote_checkpoints(cfg)


@requires_mmseg
@pytest.mark.skipif(not has_module('sklearn'), reason='the toy data draws scikit-learn digits')
def test_train_py_refuses_before_writing(tmp_path):
    """mmseg's Cityscapes configs start from open-mmlab://resnet50_v1c; offline, train.py
    says so, naming the key, and writes nothing."""
    gen = load_tool('dataset_converters', 'make_toy_cityscapes.py')
    data = str(tmp_path / 'city')
    gen.generate(data, num_train=1, num_val=1, height=64, width=128)
    work = tmp_path / 'work'
    proc = run_tool([sys.executable, osp.join(ROOT, 'tools', 'train.py'), DANET, '--data-root',
                     data, '--work-dir', str(work)],
                    dict(OFFLINE, TORCH_HOME=str(tmp_path / 'torch')), check=False, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f'error: {DANET} starts from weights that cannot be loaded here:' in proc.stderr
    assert "model.pretrained = 'open-mmlab://resnet50_v1c'" in proc.stderr
    assert '--cfg-options model.pretrained=None' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not work.exists()
