"""The toy Cityscapes generator (tools/dataset_converters/make_toy_cityscapes.py) and the toy
segmentation configs that train on it."""
import os
import os.path as osp
import re

import numpy as np
import pytest

from tests.helpers import has_module, load_tool, requires_mmseg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIGS = sorted(
    osp.join(ROOT, 'configs', 'toy', name)
    for name in os.listdir(osp.join(ROOT, 'configs', 'toy'))
    # the _citymetric config changes only the evaluator of the DANet one
    if 'cityscapes' in name and 'citymetric' not in name)
CITYMETRIC_CONFIG = osp.join(ROOT, 'configs', 'toy', 'danet_r18-d8_toy-cityscapes_citymetric.py')
NUM_TRAIN, NUM_VAL = 6, 3
H, W = 64, 128

# The official Cityscapes table (cityscapesscripts/helpers/labels.py), written out here so the
# generator's own table is checked against it: labelId -> trainId for every labelId.
OFFICIAL_TRAIN_ID = {
    0: 255, 1: 255, 2: 255, 3: 255, 4: 255, 5: 255, 6: 255, 7: 0, 8: 1, 9: 255, 10: 255,
    11: 2, 12: 3, 13: 4, 14: 255, 15: 255, 16: 255, 17: 5, 18: 255, 19: 6, 20: 7, 21: 8,
    22: 9, 23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 29: 255, 30: 255, 31: 16, 32: 17,
    33: 18
}
HAS_INSTANCES = {24, 25, 26, 27, 28, 29, 30, 31, 32, 33}
NAME_RE = re.compile(r'^(?P<city>[a-z]+)_(?P<seq>\d{6})_(?P<frame>\d{6})_leftImg8bit\.png$')

pytestmark = pytest.mark.skipif(not has_module('sklearn'),
                                reason='the generator draws scikit-learn\'s sample images')


gen = load_tool('dataset_converters', 'make_toy_cityscapes.py')


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('toy') / 'toy_cityscapes')
    gen.generate(root, num_train=NUM_TRAIN, num_val=NUM_VAL, height=H, width=W)
    return root


def read_tree(root):
    files = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                files[osp.relpath(path, root)] = f.read()
    return files


def frames(root, split):
    """(image path, gt stem) of every frame of a split, from the directory listing."""
    out = []
    img_root = osp.join(root, 'leftImg8bit', split)
    for city in sorted(os.listdir(img_root)):
        for name in sorted(os.listdir(osp.join(img_root, city))):
            m = NAME_RE.match(name)
            assert m and m['city'] == city, name
            stem = osp.join(root, 'gtFine', split, city, name[:-len('_leftImg8bit.png')])
            out.append((osp.join(img_root, city, name), stem))
    return out


def read(path, mode):
    from PIL import Image
    with Image.open(path) as im:
        assert im.mode in mode, (path, im.mode)
        return np.asarray(im)


def test_same_bytes_on_every_run(toy_root, tmp_path):
    other = str(tmp_path / 'again')
    gen.generate(other, num_train=NUM_TRAIN, num_val=NUM_VAL, height=H, width=W)
    a, b = read_tree(toy_root), read_tree(other)
    assert sorted(a) == sorted(b)
    assert sum(f.endswith('.png') for f in a) == 4 * (NUM_TRAIN + NUM_VAL)
    for name in a:
        assert a[name] == b[name], name
    # another seed draws other scenes: the seed is really used
    third = str(tmp_path / 'seed1')
    gen.generate(third, num_train=NUM_TRAIN, num_val=NUM_VAL, height=H, width=W, seed=1)
    c = read_tree(third)
    pngs = [n for n in a if n.endswith('.png')]
    assert sum(a[n] != c[n] for n in pngs) == len(pngs)


def test_second_run_does_nothing_and_new_arguments_regenerate(tmp_path):
    root = str(tmp_path / 'toy')
    assert 'written' in gen.generate(root, num_train=3, num_val=1, height=H, width=W)
    img = osp.join(root, 'leftImg8bit', 'val', 'frankfurt',
                   'frankfurt_000000_000019_leftImg8bit.png')
    mtime = os.stat(img).st_mtime_ns
    assert 'nothing to do' in gen.generate(root, num_train=3, num_val=1, height=H, width=W)
    assert os.stat(img).st_mtime_ns == mtime
    # a missing label map makes the dataset incomplete, so it is rebuilt
    gt = img.replace('leftImg8bit/', 'gtFine/').replace('_leftImg8bit.png',
                                                        '_gtFine_labelIds.png')
    os.remove(gt)
    assert 'written' in gen.generate(root, num_train=3, num_val=1, height=H, width=W)
    assert osp.isfile(gt)
    # other arguments replace the old frames rather than mixing with them
    assert 'written' in gen.generate(root, num_train=2, num_val=1, height=H, width=W)
    assert len(frames(root, 'train')) == 2
    # a folder with somebody else's data is left alone
    foreign = tmp_path / 'foreign'
    (foreign / 'gtFine').mkdir(parents=True)
    with pytest.raises(SystemExit):
        gen.generate(str(foreign), num_train=2, num_val=1)
    with pytest.raises(ValueError):
        gen.generate(str(tmp_path / 'empty'), num_train=0, num_val=1)


def test_cli_prints_one_line(tmp_path, capsys):
    assert gen.main(['--out', str(tmp_path / 'cli'), '--num-train', '2', '--num-val', '1',
                     '--height', '48', '--width', '96']) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and 'train 2 / val 1 frames of 48x96' in out[0], out


def test_layout_and_label_maps(toy_root):
    """Cityscapes names and folders; valid, mutually consistent train ids, label ids and
    instance ids; several classes in every frame."""
    seen_train_ids = set()
    for split, n, cities in (('train', NUM_TRAIN, gen.TRAIN_CITIES),
                             ('val', NUM_VAL, gen.VAL_CITIES)):
        items = frames(toy_root, split)
        assert len(items) == n
        assert {osp.basename(osp.dirname(p)) for p, _ in items} <= set(cities)
        for img_path, stem in items:
            img = read(img_path, ('RGB', ))
            train_ids = read(stem + '_gtFine_labelTrainIds.png', ('L', ))
            label_ids = read(stem + '_gtFine_labelIds.png', ('L', ))
            inst = read(stem + '_gtFine_instanceIds.png', ('I;16', 'I')).astype(np.int64)
            assert img.shape == (H, W, 3)
            assert train_ids.shape == label_ids.shape == inst.shape == (H, W)

            values = set(np.unique(train_ids).tolist())
            assert values <= set(range(19)) | {255}, values
            assert len(values - {255}) >= 4, values
            seen_train_ids |= values
            # labelTrainIds is the official mapping of labelIds
            lut = np.full(256, 254, np.int64)
            for lid, tid in OFFICIAL_TRAIN_ID.items():
                lut[lid] = tid
            assert np.array_equal(lut[label_ids], train_ids)
            # instanceIds: labelId * 1000 + k on instance classes, labelId elsewhere
            is_inst = inst >= 1000
            assert np.array_equal(np.where(is_inst, inst // 1000, inst), label_ids)
            assert set(np.unique(label_ids[is_inst]).tolist()) <= HAS_INSTANCES
            assert not np.isin(label_ids[~is_inst], list(HAS_INSTANCES)).any()
            # every instance is one object: its id is numbered from 0 without gaps
            for lid in np.unique(label_ids[is_inst]):
                ks = np.unique(inst[label_ids == lid] % 1000)
                assert ks.tolist() == list(range(len(ks)))
    assert seen_train_ids >= {0, 1, 2, 8, 10}


def test_regions_carry_photograph_texture(toy_root):
    """The pixels are not flat paint: each stuff region varies, and the classes look like
    what they are (blue-white sky brighter than the road, olive foliage)."""
    stats = {}
    for img_path, stem in frames(toy_root, 'train'):
        img = read(img_path, ('RGB', )).astype(np.float64)
        train_ids = read(stem + '_gtFine_labelTrainIds.png', ('L', ))
        for tid in (0, 1, 2, 8, 10):
            mask = train_ids == tid
            if mask.sum() > 50:
                stats.setdefault(tid, []).append((img[mask].mean(0), img[mask].std(0)))
    mean = {t: np.mean([m for m, _ in v], 0) for t, v in stats.items()}
    std = {t: np.mean([s for _, s in v], 0) for t, v in stats.items()}
    # textures vary far more than the camera noise (std 3); the hazy sky is the smoothest
    assert all(s.mean() > 10 for t, s in std.items() if t != 10), std
    assert std[10].mean() > 3, std
    assert mean[10].mean() > mean[0].mean()              # sky brighter than asphalt
    assert mean[10][2] > mean[10][0]                     # sky bluer than red
    # the trees of china.jpg are olive: green well above blue, and darker than the sky
    assert mean[8][1] > mean[8][2] + 10 and mean[8].mean() < mean[10].mean() - 50


def test_official_cityscapes_evaluation_reads_it(toy_root, tmp_path):
    """cityscapesscripts scores the ground truth given back as prediction 1.0, and a
    prediction of one class everywhere far lower."""
    pytest.importorskip('cityscapesscripts')
    import cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling as CSEval
    from PIL import Image
    preds, gts, worst = [], [], []
    for _, stem in frames(toy_root, 'val'):
        label_ids = read(stem + '_gtFine_labelIds.png', ('L', ))
        for arr, lst, tag in ((label_ids, preds, 'same'),
                              (np.full_like(label_ids, 7), worst, 'road')):
            path = str(tmp_path / f'{osp.basename(stem)}_{tag}.png')
            Image.fromarray(arr).save(path)
            lst.append(path)
        gts.append(stem + '_gtFine_labelIds.png')
    args = CSEval.args
    args.evalInstLevelScore, args.evalPixelAccuracy = True, True
    args.JSONOutput, args.quiet = False, True
    perfect = CSEval.evaluateImgLists(preds, gts, args)
    assert perfect['averageScoreCategories'] == pytest.approx(1.0)
    assert perfect['averageScoreClasses'] == pytest.approx(1.0)
    bad = CSEval.evaluateImgLists(worst, gts, args)
    assert bad['averageScoreClasses'] < 0.3


# -- mmseg ------------------------------------------------------------------------------------

def toy_cfg(path, root):
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = root
    return cfg


@requires_mmseg
def test_mmseg_cityscapes_dataset_loads_it(toy_root):
    from mmseg.datasets import CityscapesDataset
    from mmseg.utils import register_all_modules
    register_all_modules()
    for split, n in (('train', NUM_TRAIN), ('val', NUM_VAL)):
        ds = CityscapesDataset(
            data_root=toy_root,
            data_prefix=dict(img_path=f'leftImg8bit/{split}', seg_map_path=f'gtFine/{split}'),
            pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                      dict(type='PackSegInputs')])
        assert len(ds) == n
        assert len(ds.metainfo['classes']) == 19
        for (img_path, stem), info in zip(frames(toy_root, split), ds):
            sample = info['data_samples']
            assert sample.img_path == img_path
            assert sample.seg_map_path == stem + '_gtFine_labelTrainIds.png'
            seg = sample.gt_sem_seg.data.numpy()[0]
            assert np.array_equal(seg, read(sample.seg_map_path, ('L', )))
            assert info['inputs'].shape == (3, H, W)


@requires_mmseg
@pytest.mark.parametrize('config', TOY_CONFIGS, ids=osp.basename)
def test_toy_config_trains_a_step_and_predicts(config, toy_root):
    """The toy config reads the data through its own pipelines, and its model computes
    losses and predicts full-size maps on them."""
    import torch
    from mmengine.registry import DefaultScope
    from mmseg.registry import DATASETS, MODELS
    from mmseg.utils import register_all_modules
    import mmattn  # noqa: F401

    register_all_modules(init_default_scope=False)
    cfg = toy_cfg(config, toy_root)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
        train_ds = DATASETS.build(cfg.train_dataloader.dataset)
        val_ds = DATASETS.build(cfg.val_dataloader.dataset)
    model.init_weights()
    assert len(train_ds) == NUM_TRAIN and len(val_ds) == NUM_VAL
    # no SyncBN on a CPU run
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())

    from mmengine.dataset import pseudo_collate
    batch = model.data_preprocessor(pseudo_collate([train_ds[i] for i in range(2)]), True)
    crop = tuple(cfg.crop_size)
    assert batch['inputs'].shape[-2:] == crop
    model.train()
    losses = model.loss(batch['inputs'], batch['data_samples'])
    total = sum(v for k, v in losses.items() if k.startswith('loss') or '.loss' in k
                if isinstance(v, torch.Tensor))
    assert torch.isfinite(total) and total > 0
    total.backward()

    model.eval()
    batch = model.data_preprocessor(pseudo_collate([val_ds[0]]), False)
    with torch.no_grad():
        out = model.predict(batch['inputs'], batch['data_samples'])
    pred = out[0].pred_sem_seg.data
    assert pred.shape == (1, H, W) and int(pred.max()) < 19


@requires_mmseg
def test_mmseg_cityscapes_metric_runs_on_it(toy_root, tmp_path):
    """The evaluators of the _citymetric toy config (IoUMetric and mmseg's CityscapesMetric,
    which runs cityscapesscripts on labelIds), fed the ground truth as the prediction, report
    a perfect score, and road predicted on the sky lowers both."""
    pytest.importorskip('cityscapesscripts')
    import torch
    from mmengine.structures import PixelData
    from mmseg.datasets import CityscapesDataset
    from mmseg.registry import METRICS
    from mmseg.structures import SegDataSample
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)

    def samples(wrong_sky):
        out = []
        for img_path, stem in frames(toy_root, 'val'):
            gt = torch.from_numpy(read(stem + '_gtFine_labelTrainIds.png', ('L', ))
                                  .astype(np.int64))[None]
            # where the truth is ignored (255) predict road: both evaluations skip it
            pred = torch.where(gt == 255, torch.zeros_like(gt), gt)
            if wrong_sky:
                pred[gt == 10] = 0
            s = SegDataSample(metainfo=dict(img_path=img_path,
                                            seg_map_path=stem + '_gtFine_labelTrainIds.png'))
            s.pred_sem_seg = PixelData(data=pred)
            s.gt_sem_seg = PixelData(data=gt)
            out.append(s.to_dict())
        return out

    from mmengine.config import Config
    cfg = Config.fromfile(CITYMETRIC_CONFIG)
    scores = {}
    for wrong_sky in (False, True):
        for metric_cfg in cfg.test_evaluator:
            metric_cfg = dict(metric_cfg)
            if 'output_dir' in metric_cfg:
                metric_cfg['output_dir'] = str(tmp_path / f'cs{wrong_sky}')
            metric = METRICS.build(metric_cfg)
            metric.dataset_meta = dict(classes=CityscapesDataset.METAINFO['classes'])
            metric.process({}, samples(wrong_sky))
            scores.update({(k, wrong_sky): v
                           for k, v in metric.compute_metrics(metric.results).items()})
    assert scores[('mIoU', False)] == pytest.approx(100.0)
    assert scores[('averageScoreCategories', False)] == pytest.approx(1.0)
    assert scores[('mIoU', True)] < 100.0
    assert scores[('averageScoreCategories', True)] < 1.0


# -- the real-data configs --------------------------------------------------------------------

REAL_CONFIGS = sorted(
    name for name in os.listdir(osp.join(ROOT, 'configs'))
    if name.endswith('.py') and 'cityscapes' in name
    and name.split('_')[0] in ('danet', 'ccnet', 'ocrnet', 'ann'))
# gated variant -> (its baseline, the module in every bottleneck, whether it has a SyncBN)
GATED = {
    'danet_r50-d8_cbam-c3_cityscapes-512x1024_40k.py':
    ('danet_r50-d8_cityscapes-512x1024_40k.py', 'CBAM', True),
    'ccnet_r50-d8_se-c3_cityscapes-512x1024_40k.py':
    ('ccnet_r50-d8_cityscapes-512x1024_40k.py', 'SE', False),
    'ann_r50-d8_coordatt-c3_cityscapes-512x1024_40k.py':
    ('ann_r50-d8_cityscapes-512x1024_40k.py', 'CoordAttention', True),
    'ocrnet_r101-d8_sge-c3_cityscapes-512x1024_40k.py':
    ('ocrnet_r101-d8_cityscapes-512x1024_40k.py', 'SGE', False),
}


def test_every_head_has_a_config_and_a_gated_variant():
    heads = {name.split('_')[0] for name in REAL_CONFIGS}
    assert heads == {'danet', 'ccnet', 'ocrnet', 'ann'}
    assert {n.split('_')[0] for n in GATED} == heads
    assert set(GATED) <= set(REAL_CONFIGS)
    assert {'ocrnet_hr18_cityscapes-512x1024_40k.py',
            'ocrnet_hr48_cityscapes-512x1024_40k.py'} <= set(REAL_CONFIGS)


@requires_mmseg
@pytest.mark.parametrize('name', REAL_CONFIGS)
def test_real_config_is_mmsegs_cityscapes_schedule(name):
    """The configs are mmseg's Cityscapes runs: 512x1024 crops, 40k iterations of batch 2 per
    GPU, SyncBN, the Cityscapes data layout; a gated variant differs from its baseline only in
    the backbone's plugins."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    assert 'mmattn' in cfg.custom_imports['imports']
    assert tuple(cfg.crop_size) == (512, 1024)
    assert cfg.train_cfg.max_iters == 40000 and cfg.train_dataloader.batch_size == 2
    assert cfg.train_dataloader.dataset.type == 'CityscapesDataset'
    assert cfg.train_dataloader.dataset.data_root == 'data/cityscapes/'
    assert cfg.model.backbone.norm_cfg['type'] == 'SyncBN'
    if name in GATED:
        base = Config.fromfile(osp.join(ROOT, 'configs', GATED[name][0])).to_dict()
        mine = cfg.to_dict()
        plugins = mine['model']['backbone'].pop('plugins')
        assert base['model']['backbone'].pop('plugins', None) is None
        assert mine == base
        # one plugin per position: mmseg 1.2.2's ResNetV1c runs only the last of several
        assert len({p['position'] for p in plugins}) == len(plugins) == 1
        norm = plugins[0]['cfg'].get('norm_cfg')
        assert (norm is not None and norm['type'] == 'SyncBN') == GATED[name][2]


@requires_mmseg
@pytest.mark.parametrize('name', sorted(GATED))
def test_gated_variant_runs_its_module_in_every_bottleneck(name):
    """Built from the config, the segmentor has the module after conv3 of every bottleneck,
    with SyncBN where it has a norm, and a forward pass (eval, where SyncBN needs no process
    group) runs every one of them."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    from mmseg.utils import register_all_modules
    import mmattn  # noqa: F401
    register_all_modules(init_default_scope=False)

    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    module_name = GATED[name][1]
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    blocks = [m for m in model.backbone.modules() if type(m).__name__ == 'Bottleneck']
    expected = {50: 16, 101: 33}[cfg.model.backbone.depth]
    assert len(blocks) == expected
    calls = []
    for block in blocks:
        assert len(block.after_conv3_plugin_names) == 1
        plugin = getattr(block, block.after_conv3_plugin_names[0])
        assert type(plugin).__name__ == module_name
        assert plugin.in_channels == block.conv3.out_channels
        norms = [m for m in plugin.modules()
                 if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        assert all(isinstance(m, torch.nn.SyncBatchNorm) for m in norms)
        assert bool(norms) == GATED[name][2]
        plugin.register_forward_hook(lambda *args: calls.append(1))
    model.eval()
    x = torch.randn(1, 3, 64, 128)
    meta = dict(img_shape=(64, 128), ori_shape=(64, 128), pad_shape=(64, 128))
    with torch.no_grad():
        out = model.predict(x, [SegDataSample(metainfo=meta)])
    assert len(calls) == expected
    assert out[0].pred_sem_seg.data.shape == (1, 64, 128)
