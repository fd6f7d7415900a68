"""tools/train.py and tools/test.py options a first run needs: the data elsewhere (--data-root,
and the hint of the missing-data error), test-time augmentation (--tta), and --resume on a run
that has finished."""
import os.path as osp
import shlex
import sys

import pytest
import torch

import mmattn  # noqa: F401
from mmattn.utils import DatasetNotFoundError, check_dataset_paths
from tests.helpers import has_module, load_tool, requires_mmdet, requires_mmseg
from tests.test_tools.toy_run import ROOT, run_tool

COCO_CONFIG = osp.join(ROOT, 'configs', 'toy', 'faster_rcnn_se_r50_toy-coco.py')
CITY_CONFIG = osp.join(ROOT, 'configs', 'toy', 'danet_r18-d8_toy-cityscapes.py')
needs_toy = pytest.mark.skipif(not has_module('sklearn'),
                               reason='the toy data generators draw scikit-learn\'s images')


train = load_tool('train.py', name='train_tool')
test = load_tool('test.py', name='test_tool')


@pytest.fixture(scope='module')
def toy_coco(tmp_path_factory):
    gen = load_tool('dataset_converters', 'make_toy_coco.py')
    root = str(tmp_path_factory.mktemp('data') / 'my_coco')
    gen.generate(root, num_train=2, num_val=2)
    return root


def build_coco_data(cfg):
    """The datasets and the COCO metric of a config, built as the runner builds them (the
    metric reads its annotation file when built)."""
    from mmengine.registry import init_default_scope

    from mmdet.registry import DATASETS, METRICS
    init_default_scope('mmdet')
    sizes = [len(DATASETS.build(cfg[k].dataset))
             for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    metric = METRICS.build(cfg.val_evaluator)
    return sizes, metric


def missing_data_error(cfg):
    with pytest.raises(DatasetNotFoundError) as info:
        check_dataset_paths(cfg)
    return str(info.value)


@requires_mmdet
@needs_toy
def test_the_missing_data_hint_works(toy_coco, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the config's relative data_root holds nothing here
    work = ['--work-dir', str(tmp_path / 'work')]
    message = missing_data_error(train.build_cfg(train.parse_args([COCO_CONFIG] + work)))
    assert '--data-root DIR' in message and 'alone changes nothing' in message

    # what mmengine users try first: it changes nothing, as the error says
    cfg = train.build_cfg(train.parse_args(
        [COCO_CONFIG, '--cfg-options', f'data_root={toy_coco}/'] + work))
    missing_data_error(cfg)

    # the hint's --cfg-options, with DIR replaced by the data's place
    options = message.split('`--cfg-options ')[1].split('`')[0]
    options = shlex.split(options.replace('DIR', toy_coco))
    assert any(o.startswith('val_evaluator.ann_file=') for o in options)
    cfg = train.build_cfg(train.parse_args([COCO_CONFIG, '--cfg-options', *options] + work))
    check_dataset_paths(cfg)
    sizes, metric = build_coco_data(cfg)
    assert sizes == [2, 2, 2] and len(metric._coco_api.getImgIds()) == 2

    # the hint's --data-root, in train.py and test.py
    cfg = train.build_cfg(train.parse_args([COCO_CONFIG, '--data-root', toy_coco] + work))
    check_dataset_paths(cfg)
    sizes, metric = build_coco_data(cfg)
    assert sizes == [2, 2, 2] and metric._coco_api.dataset['images']
    assert cfg.val_evaluator.ann_file == osp.join(toy_coco, 'annotations',
                                                  'instances_val2017.json')
    ckpt = tmp_path / 'any.pth'
    ckpt.write_bytes(b'')
    cfg, _ = test.build_cfg(test.parse_args([COCO_CONFIG, str(ckpt), '--data-root', toy_coco]
                                            + work))
    check_dataset_paths(cfg, loaders=('test_dataloader', ))
    assert cfg.test_evaluator.ann_file == cfg.val_evaluator.ann_file


def test_set_data_root_follows_wrappers_and_keeps_other_paths():
    from mmengine.config import Config

    from mmattn.utils.data_check import set_data_root
    cfg = Config(dict(
        data_root='data/x/',
        train_dataloader=dict(dataset=dict(type='RepeatDataset', times=2, dataset=dict(
            type='D', data_root='data/x/', ann_file='a.json', data_prefix=dict(img='i/')))),
        val_dataloader=dict(dataset=dict(type='ConcatDataset', datasets=[
            dict(type='D', data_root='data/x/', ann_file='b.json'),
            dict(type='D', data_root='data/y', ann_file='c.json')])),
        test_dataloader=None,
        val_evaluator=[dict(type='M', ann_file='data/x/annotations/b.json'),
                       dict(type='M', ann_file='/elsewhere/c.json')],
        test_evaluator=dict(type='M')))
    changed = set_data_root(cfg, '/new/root')
    assert cfg.train_dataloader.dataset.dataset.data_root == '/new/root/'
    assert [d.data_root for d in cfg.val_dataloader.dataset.datasets] == ['/new/root/',
                                                                         '/new/root']
    assert cfg.val_evaluator[0].ann_file == '/new/root/annotations/b.json'
    assert cfg.val_evaluator[1].ann_file == '/elsewhere/c.json'
    assert cfg.data_root == '/new/root'
    assert set(changed) == {'train_dataloader.dataset.dataset.data_root',
                            'val_dataloader.dataset.datasets.0.data_root',
                            'val_dataloader.dataset.datasets.1.data_root', 'data_root',
                            'val_evaluator.0.ann_file'}
    with pytest.raises(ValueError, match='non-empty path'):
        set_data_root(cfg, '')


# -- --tta ------------------------------------------------------------------------------------
@requires_mmseg
def test_tta_wraps_the_model_and_uses_the_tta_pipeline(tmp_path):
    ckpt = tmp_path / 'any.pth'
    ckpt.write_bytes(b'')
    plain, _ = test.build_cfg(test.parse_args([CITY_CONFIG, str(ckpt)]))
    cfg, _ = test.build_cfg(test.parse_args([CITY_CONFIG, str(ckpt), '--tta']))
    assert cfg.model.type == 'SegTTAModel' and cfg.model.module == plain.model
    assert cfg.test_dataloader.dataset.pipeline == plain.tta_pipeline
    assert plain.test_dataloader.dataset.pipeline != plain.tta_pipeline


@requires_mmdet
def test_tta_without_a_tta_config_is_an_error(tmp_path, capsys):
    ckpt = tmp_path / 'any.pth'
    ckpt.write_bytes(b'')
    with pytest.raises(SystemExit) as info:
        test.build_cfg(test.parse_args([COCO_CONFIG, str(ckpt), '--tta']))
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert 'has no tta_model and no tta_pipeline' in err and 'DetTTAModel' in err


@requires_mmseg
@needs_toy
def test_tta_run_on_toy_cityscapes(tmp_path):
    """tools/test.py --tta end to end: an (untrained) toy DANet on two toy frames."""
    gen = load_tool('dataset_converters', 'make_toy_cityscapes.py')
    data = str(tmp_path / 'city')
    gen.generate(data, num_train=1, num_val=2, height=64, width=128)
    from mmengine.registry import init_default_scope

    from mmseg.registry import MODELS
    cfg, _ = test.build_cfg(test.parse_args([CITY_CONFIG, __file__]))
    init_default_scope('mmseg')
    ckpt = str(tmp_path / 'untrained.pth')
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict(), meta=dict()), ckpt)
    proc = run_tool([sys.executable, osp.join(ROOT, 'tools', 'test.py'), CITY_CONFIG, ckpt,
                     '--tta', '--data-root', data, '--work-dir', str(tmp_path / 'work')],
                    env_extra=dict(OMP_NUM_THREADS='1'), timeout=600)
    assert 'metrics:' in proc.stdout and 'mIoU' in proc.stdout


# -- --resume on a finished run -----------------------------------------------------------------
@requires_mmdet
def test_resume_of_a_finished_run_trains_nothing(tmp_path, capsys):
    work = tmp_path / 'work'
    work.mkdir()
    # the toy config trains 6 epochs; mmengine writes meta.epoch = epochs done
    for epoch in (5, 6):
        torch.save(dict(meta=dict(epoch=epoch, iter=epoch * 10), state_dict={},
                        message_hub={}), work / f'epoch_{epoch}.pth')
    (work / 'last_checkpoint').write_text(str(work / 'epoch_6.pth'))
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in work.iterdir()}

    # no data, no model: it stops before either is needed
    argv = [COCO_CONFIG, '--work-dir', str(work), '--data-root', str(tmp_path / 'none')]
    assert train.main(argv + ['--resume']) is None
    out = capsys.readouterr().out
    assert 'nothing left to train' in out and 'epoch_6.pth is the end of epoch 6' in out
    assert 'max_epochs=6' in out and 'train_cfg.max_epochs=12' in out
    assert train.main(argv + ['--resume', str(work / 'epoch_6.pth')]) is None
    assert 'nothing left to train' in capsys.readouterr().out
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in work.iterdir()}
    assert after == before

    # from epoch 5 there is an epoch left: the run goes on (to the data check, here)
    with pytest.raises(SystemExit) as info:
        train.main(argv + ['--resume', str(work / 'epoch_5.pth')])
    assert info.value.code == 2 and 'does not exist' in capsys.readouterr().err


def test_nothing_left_to_train_for_iteration_loops(tmp_path):
    from mmengine.config import Config

    from mmattn.utils.resume import nothing_left_to_train
    cfg = Config(dict(train_cfg=dict(type='IterBasedTrainLoop', max_iters=600),
                      work_dir=str(tmp_path)))
    ckpt = str(tmp_path / 'iter_600.pth')
    torch.save(dict(meta=dict(epoch=0, iter=600)), ckpt)
    assert 'end of iter 600' in nothing_left_to_train(cfg, ckpt)
    torch.save(dict(meta=dict(epoch=0, iter=599)), ckpt)
    assert nothing_left_to_train(cfg, ckpt) is None
    # no checkpoint in the work dir: a fresh start
    assert nothing_left_to_train(cfg) is None
    assert nothing_left_to_train(cfg, str(tmp_path / 'none.pth')) is None
