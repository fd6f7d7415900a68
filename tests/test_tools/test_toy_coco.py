"""The toy COCO generator (tools/dataset_converters/make_toy_coco.py) and the toy configs."""
import json
import os
import os.path as osp

import numpy as np
import pytest

from tests.helpers import has_module, load_tool, requires_mmdet

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SE_CONFIG = osp.join(ROOT, 'configs', 'toy', 'faster_rcnn_se_r50_toy-coco.py')
PLAIN_CONFIG = osp.join(ROOT, 'configs', 'toy', 'faster_rcnn_r50_toy-coco.py')
NUM_TRAIN, NUM_VAL = 8, 4
SPLITS = (('train2017', NUM_TRAIN), ('val2017', NUM_VAL))

pytestmark = pytest.mark.skipif(not has_module('sklearn'),
                                reason='the generator draws scikit-learn\'s digits')


gen = load_tool('dataset_converters', 'make_toy_coco.py')


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('toy') / 'toy_coco')
    gen.generate(root, num_train=NUM_TRAIN, num_val=NUM_VAL)
    return root


def read_tree(root):
    """Every file under ``root`` (relative path -> bytes)."""
    files = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                files[osp.relpath(path, root)] = f.read()
    return files


def load_json(root, split):
    with open(osp.join(root, 'annotations', f'instances_{split}.json')) as f:
        return json.load(f)


def read_png(path):
    from PIL import Image
    with Image.open(path) as im:
        assert im.mode == 'RGB'
        return np.asarray(im)


def test_same_bytes_on_every_run(toy_root, tmp_path):
    other = str(tmp_path / 'again')
    gen.generate(other, num_train=NUM_TRAIN, num_val=NUM_VAL)
    a, b = read_tree(toy_root), read_tree(other)
    assert sorted(a) == sorted(b)
    assert sum(f.endswith('.png') for f in a) == NUM_TRAIN + NUM_VAL
    for name in a:
        assert a[name] == b[name], name
    # another seed gives other images: the seed is really used
    third = str(tmp_path / 'seed1')
    gen.generate(third, num_train=NUM_TRAIN, num_val=NUM_VAL, seed=1)
    c = read_tree(third)
    assert a['annotations/instances_train2017.json'] != c['annotations/instances_train2017.json']


def test_second_run_does_nothing_and_new_arguments_regenerate(tmp_path):
    root = str(tmp_path / 'toy')
    assert 'written' in gen.generate(root, num_train=3, num_val=2)
    ann = osp.join(root, 'annotations', 'instances_train2017.json')
    mtime = os.stat(ann).st_mtime_ns
    assert 'nothing to do' in gen.generate(root, num_train=3, num_val=2)
    assert os.stat(ann).st_mtime_ns == mtime
    # a missing image makes the dataset incomplete, so it is rebuilt
    os.remove(osp.join(root, 'val2017', '000000000004.png'))
    assert 'written' in gen.generate(root, num_train=3, num_val=2)
    assert osp.isfile(osp.join(root, 'val2017', '000000000004.png'))
    # other arguments replace the old images rather than mixing with them
    assert 'written' in gen.generate(root, num_train=2, num_val=1)
    assert sorted(os.listdir(osp.join(root, 'train2017'))) == [
        '000000000001.png', '000000000002.png']
    assert os.listdir(osp.join(root, 'val2017')) == ['000000000003.png']
    # a folder with somebody else's data is left alone
    foreign = tmp_path / 'foreign'
    (foreign / 'annotations').mkdir(parents=True)
    with pytest.raises(SystemExit):
        gen.generate(str(foreign), num_train=2, num_val=1)


def test_cli_prints_one_line(tmp_path, capsys):
    assert gen.main(['--out', str(tmp_path / 'cli'), '--num-train', '2', '--num-val', '1']) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and 'train2017 2 images' in out[0] and 'val2017 1 images' in out[0]


def test_coco_fields(toy_root):
    image_ids, ann_ids = set(), set()
    for split, n in SPLITS:
        data = load_json(toy_root, split)
        assert [c['id'] for c in data['categories']] == list(range(1, 11))
        assert [c['name'] for c in data['categories']] == [str(d) for d in range(10)]
        assert len(data['images']) == n
        ids = {im['id'] for im in data['images']}
        assert not ids & image_ids
        image_ids |= ids
        per_image = {i: 0 for i in ids}
        for ann in data['annotations']:
            assert ann['id'] not in ann_ids
            ann_ids.add(ann['id'])
            assert ann['image_id'] in ids and 1 <= ann['category_id'] <= 10
            x, y, w, h = ann['bbox']
            assert ann['iscrowd'] == 0 and ann['area'] == w * h
            assert ann['segmentation'] == [[x, y, x + w, y, x + w, y + h, x, y + h]]
            per_image[ann['image_id']] += 1
        assert all(1 <= k <= 3 for k in per_image.values()), per_image
        for im in data['images']:
            assert 64 <= im['width'] <= 128 and 64 <= im['height'] <= 128
            assert osp.isfile(osp.join(toy_root, split, im['file_name']))


def test_train_and_val_digits_are_disjoint():
    _, labels = gen.load_digit_images()
    train, val = gen.split_digits(labels, seed=0)
    assert not set(train) & set(val) and len(train) + len(val) == len(labels)
    # every class is in both parts
    assert set(labels[train]) == set(labels[val]) == set(range(10))


def test_boxes_inside_images_and_tight_around_ink(toy_root):
    # Background pixels are at most BG_MAX and ink colours at least INK_MIN on every channel;
    # outside a box the ink is at most INK_THRESHOLD, so a pixel brighter than this is ink
    # that must lie inside a box.
    bright = gen.BG_MAX + gen.INK_THRESHOLD * (255 - gen.BG_MAX) + 1
    for split, _ in SPLITS:
        data = load_json(toy_root, split)
        anns = {}
        for ann in data['annotations']:
            anns.setdefault(ann['image_id'], []).append(ann)
        for im in data['images']:
            img = read_png(osp.join(toy_root, split, im['file_name']))
            assert img.shape == (im['height'], im['width'], 3)
            ink = img.min(axis=2) > bright
            covered = np.zeros_like(ink)
            for ann in anns[im['id']]:
                x, y, w, h = ann['bbox']
                assert w >= 2 and h >= 2
                assert 0 <= x and 0 <= y and x + w <= im['width'] and y + h <= im['height']
                covered[y:y + h, x:x + w] = True
                # strong ink inside every box (the tight fit is checked on clean renders)
                assert ink[y:y + h, x:x + w].any(), ann
            assert not (ink & ~covered).any(), f'ink outside every box in {im["file_name"]}'


def test_boxes_are_the_ink_extent(monkeypatch):
    """On a black background with white ink, pixel / 255 is the ink itself, so the tight box
    of the pixels above INK_THRESHOLD can be read back from the image."""
    monkeypatch.setattr(gen, 'make_background', lambda rng, h, w: np.zeros((h, w, 3)))
    monkeypatch.setattr(gen, 'INK_MIN', 255)
    images, labels = gen.load_digit_images()
    rng = np.random.default_rng(0)
    threshold = gen.INK_THRESHOLD * 255
    n_objects = 0
    for _ in range(20):
        img, objects = gen.render_image(rng, images, labels, np.arange(len(labels)))
        assert np.all(img[..., 0] == img[..., 1]) and np.all(img[..., 0] == img[..., 2])
        gray = img[..., 0].astype(np.float64)
        # rounding to uint8 blurs the threshold by half a level
        sure, maybe = gray > threshold + 0.5, gray > threshold - 0.5
        covered = np.zeros(gray.shape, bool)
        for label, (x0, y0, x1, y1) in objects:
            assert 0 <= label <= 9
            assert 0 <= x0 < x1 <= gray.shape[1] and 0 <= y0 < y1 <= gray.shape[0]
            covered[y0:y1, x0:x1] = True
            sure_box, maybe_box = sure[y0:y1, x0:x1], maybe[y0:y1, x0:x1]
            # every side of the box touches ink
            for edge in (maybe_box[0], maybe_box[-1], maybe_box[:, 0], maybe_box[:, -1]):
                assert edge.any(), (label, (x0, y0, x1, y1))
            assert sure_box.any()
            n_objects += 1
        assert not (sure & ~covered).any(), 'ink outside every box'
        # digits are kept apart: no box overlaps another
        assert covered.sum() == sum((x1 - x0) * (y1 - y0) for _, (x0, y0, x1, y1) in objects)
    assert n_objects > 20


def test_pycocotools_reads_and_scores_it(toy_root):
    pytest.importorskip('pycocotools')
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    for split, n in SPLITS:
        ann_file = osp.join(toy_root, 'annotations', f'instances_{split}.json')
        coco = COCO(ann_file)
        assert len(coco.getImgIds()) == n
        assert coco.getCatIds(catNms=[str(d) for d in range(10)]) == list(range(1, 11))
        anns = coco.loadAnns(coco.getAnnIds())
        assert anns and all(a['area'] > 0 for a in anns)
        # the ground truth given back as detections scores a perfect AP; a box shifted by
        # half its size scores nothing at IoU 0.5
        dets = [dict(image_id=a['image_id'], category_id=a['category_id'], bbox=a['bbox'],
                     score=1.0) for a in anns]
        ev = COCOeval(coco, coco.loadRes(dets), 'bbox')
        ev.evaluate(), ev.accumulate(), ev.summarize()
        assert ev.stats[0] == pytest.approx(1.0) and ev.stats[1] == pytest.approx(1.0)
        shifted = [dict(d, bbox=[d['bbox'][0] + d['bbox'][2] / 2, d['bbox'][1] +
                                 d['bbox'][3] / 2, d['bbox'][2], d['bbox'][3]])
                   for d in dets]
        ev = COCOeval(coco, coco.loadRes(shifted), 'bbox')
        ev.evaluate(), ev.accumulate(), ev.summarize()
        assert ev.stats[1] == pytest.approx(0.0)


def toy_cfg(path, root):
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = root
    cfg.val_evaluator.ann_file = osp.join(root, 'annotations', 'instances_val2017.json')
    return cfg


@requires_mmdet
def test_mmdet_coco_dataset_reads_it_with_the_toy_pipeline(toy_root):
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = toy_cfg(SE_CONFIG, toy_root)
    # the test pipeline loads the boxes after resizing: they stay in original pixels there
    for key, split, n, boxes_resized in (('train_dataloader', 'train2017', NUM_TRAIN, True),
                                         ('val_dataloader', 'val2017', NUM_VAL, False)):
        dataset = DATASETS.build(cfg[key].dataset)
        assert len(dataset) == n
        assert dataset.metainfo['classes'] == tuple(str(d) for d in range(10))
        data = load_json(toy_root, split)
        by_image = {}
        for ann in data['annotations']:
            by_image.setdefault(ann['image_id'], []).append(ann)
        for i in range(n):
            item = dataset[i]
            sample = item['data_samples']
            img = item['inputs']
            h, w = sample.img_shape
            assert img.shape == (3, h, w) and max(h, w) == 128
            anns = by_image[sample.img_id]
            sx, sy = sample.scale_factor if boxes_resized else (1.0, 1.0)
            expected = np.array([[a['bbox'][0] * sx, a['bbox'][1] * sy,
                                  (a['bbox'][0] + a['bbox'][2]) * sx,
                                  (a['bbox'][1] + a['bbox'][3]) * sy] for a in anns])
            np.testing.assert_allclose(sample.gt_instances.bboxes.numpy(), expected, atol=1e-3)
            assert sample.gt_instances.labels.tolist() == [a['category_id'] - 1 for a in anns]


@requires_mmdet
def test_toy_configs_differ_only_in_the_plugin():
    from mmengine.config import Config
    se, plain = Config.fromfile(SE_CONFIG), Config.fromfile(PLAIN_CONFIG)
    assert se.model.backbone.plugins[0].cfg.type == 'mmattn.SE'
    assert plain.model.backbone.plugins is None
    se_dict, plain_dict = se.to_dict(), plain.to_dict()
    se_dict['model']['backbone'].pop('plugins')
    plain_dict['model']['backbone'].pop('plugins')
    assert se_dict == plain_dict


@requires_mmdet
@pytest.mark.parametrize('path', [SE_CONFIG, PLAIN_CONFIG])
def test_toy_model_trains_a_step(toy_root, path):
    """The toy model builds, takes a training step on toy data and predicts."""
    import torch
    from mmengine.dataset import pseudo_collate
    from mmdet.registry import DATASETS, MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    import mmattn  # noqa: F401  (registers the plugin, as custom_imports does)
    cfg = toy_cfg(path, toy_root)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    n_se = sum(type(m).__name__ == 'SE' for m in model.backbone.modules())
    assert n_se == (16 if path == SE_CONFIG else 0)  # one per bottleneck of ResNet-50
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batch = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(2)]), True)
    model.train()
    losses = model(**batch, mode='loss')
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total) and total > 0
    total.backward()
    assert model.backbone.conv1.weight.grad.abs().sum() > 0
    model.eval()
    val = DATASETS.build(cfg.val_dataloader.dataset)
    with torch.no_grad():
        out = model.test_step(pseudo_collate([val[0]]))
    assert out[0].pred_instances.bboxes.shape[-1] == 4
