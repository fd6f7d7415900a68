"""Write a small COCO-format detection dataset of handwritten digits (the "toy COCO").

The pixels are real handwriting: scikit-learn's copy of the UCI optical digits (1797 8x8
images, shipped inside the scikit-learn package, so nothing is downloaded). Each digit is
upscaled 2x-4x and pasted, 1 to 3 per image, onto a dark textured background; its box is the
tight extent of the pixels whose ink exceeds ``INK_THRESHOLD``. The output has the on-disk
layout of COCO 2017, so mmdet's ``CocoDataset`` and ``CocoMetric`` read it unchanged::

    data/toy_coco/
        train2017/000000000001.png ...
        val2017/000000000301.png ...
        annotations/instances_train2017.json
        annotations/instances_val2017.json

Train and val draw their digits from disjoint parts of the digit set (75% / 25%), so the
validation scores measure handwriting the model has not seen. The generator is deterministic:
the same version and arguments give the same bytes, and a stamp file lets a second run return
at once.

Usage::

    python tools/dataset_converters/make_toy_coco.py [--out data/toy_coco]
        [--num-train 300] [--num-val 60] [--seed 0] [--force]
"""
import argparse
import json
import os
import os.path as osp
import sys

import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _toy_output import (read_stamp, refuse_foreign_data, staged_output,  # noqa: E402
                         write_png)

# Bump when the output for given arguments changes; the stamp then no longer matches.
GENERATOR_VERSION = 1
STAMP_NAME = '.toy_coco_stamp.json'

CLASSES = tuple(str(d) for d in range(10))
MIN_SIZE, MAX_SIZE = 64, 128          # canvas side lengths, drawn independently
MIN_SCALE, MAX_SCALE = 2.0, 4.0       # digit upscaling: 8x8 -> 16..32 px
MAX_DIGITS = 3
INK_THRESHOLD = 0.25                  # ink fraction (0..1) that counts as part of the digit
# Background channels stay <= BG_MAX and ink colours have every channel >= INK_MIN, so a pixel
# brighter than BG_MAX + INK_THRESHOLD * (255 - BG_MAX) must be ink inside some box (the tests
# use this to check the boxes without the generator's masks).
BG_MAX = 100
INK_MIN = 190
# Train and val take their digits from disjoint parts of the 1797-image set.
VAL_DIGIT_FRACTION = 0.25


def load_digit_images():
    """The 1797 scikit-learn digits as float arrays in [0, 1], with their labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise SystemExit('make_toy_coco.py needs scikit-learn (pip install scikit-learn): '
                         'the digits it draws ship with it.') from e
    digits = load_digits()
    images = digits.images.astype(np.float64) / 16.0
    return images, digits.target.astype(np.int64)


def split_digits(labels, seed):
    """Indices of the digits for train and for val (disjoint, fixed by ``seed``)."""
    order = np.random.default_rng(seed).permutation(len(labels))
    n_val = int(round(len(labels) * VAL_DIGIT_FRACTION))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def upscale(img, out_h, out_w):
    """Bilinear resize written in numpy, so the bytes do not depend on an image library."""
    in_h, in_w = img.shape
    # pixel-centre sampling, like cv2.resize / PIL with half-pixel centres
    ys = np.clip((np.arange(out_h) + 0.5) * in_h / out_h - 0.5, 0, in_h - 1)
    xs = np.clip((np.arange(out_w) + 0.5) * in_w / out_w - 0.5, 0, in_w - 1)
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    y1 = np.minimum(y0 + 1, in_h - 1)
    x1 = np.minimum(x0 + 1, in_w - 1)
    wy = (ys - y0)[:, None]
    wx = (xs - x0)[None, :]
    top = img[y0][:, x0] * (1 - wx) + img[y0][:, x1] * wx
    bottom = img[y1][:, x0] * (1 - wx) + img[y1][:, x1] * wx
    return top * (1 - wy) + bottom * wy


def make_background(rng, h, w):
    """A dark colour with a few low-frequency waves and pixel noise, in [0, BG_MAX]."""
    base = rng.uniform(15, 70, size=3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    texture = np.zeros((h, w))
    for _ in range(3):
        fy, fx = rng.uniform(-0.25, 0.25, size=2)
        texture += np.sin(fy * yy + fx * xx + rng.uniform(0, 2 * np.pi))
    texture *= rng.uniform(4, 12) / 3
    noise = rng.normal(0, 6, size=(h, w, 3))
    bg = base[None, None, :] + texture[:, :, None] + noise
    return np.clip(bg, 0, BG_MAX)


def paint_ink(rng, canvas, alpha, top, left):
    """Blend a digit into ``canvas`` at (top, left): its ink ``alpha`` (h x w, in [0, 1]) in a
    random colour with every channel >= INK_MIN."""
    dh, dw = alpha.shape
    colour = rng.uniform(INK_MIN, 255, size=3)
    region = canvas[top:top + dh, left:left + dw]
    canvas[top:top + dh, left:left + dw] = (
        region * (1 - alpha[:, :, None]) + colour[None, None, :] * alpha[:, :, None])


def boxes_overlap(a, b, margin=2):
    """Whether two (x0, y0, x1, y1) pixel boxes (x1/y1 exclusive) come within ``margin``."""
    return not (a[2] + margin <= b[0] or b[2] + margin <= a[0] or
                a[3] + margin <= b[1] or b[3] + margin <= a[1])


def render_image(rng, images, labels, pool):
    """One canvas with 1 to MAX_DIGITS digits from ``pool``.

    Returns the uint8 HxWx3 image and a list of (label, (x0, y0, x1, y1)) with exclusive
    x1/y1: the tight extent of the pixels whose ink exceeds INK_THRESHOLD.
    """
    h, w = (int(v) for v in rng.integers(MIN_SIZE, MAX_SIZE + 1, size=2))
    canvas = make_background(rng, h, w)
    objects = []
    for _ in range(int(rng.integers(1, MAX_DIGITS + 1))):
        idx = int(rng.choice(pool))
        scale_y = rng.uniform(MIN_SCALE, MAX_SCALE)
        # mild aspect jitter: handwriting is not all the same width
        scale_x = scale_y * rng.uniform(0.8, 1.2)
        dh = int(round(8 * scale_y))
        dw = int(round(8 * scale_x))
        alpha = np.clip(upscale(images[idx], dh, dw), 0.0, 1.0)
        ink = alpha > INK_THRESHOLD
        rows = np.flatnonzero(ink.any(axis=1))
        cols = np.flatnonzero(ink.any(axis=0))
        if rows.size == 0:
            continue
        # try a few positions that keep this digit clear of the ones placed already
        for _attempt in range(20):
            top = int(rng.integers(0, h - dh + 1))
            left = int(rng.integers(0, w - dw + 1))
            box = (left + int(cols[0]), top + int(rows[0]),
                   left + int(cols[-1]) + 1, top + int(rows[-1]) + 1)
            # the whole patch, not just the ink, must stay clear: faint strokes below the
            # threshold would otherwise bleed into a neighbour's box
            patch = (left, top, left + dw, top + dh)
            if not any(boxes_overlap(patch, p) for _, _, p in objects):
                break
        else:
            continue
        paint_ink(rng, canvas, alpha, top, left)
        objects.append((int(labels[idx]), box, patch))
    image = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    return image, [(label, box) for label, box, _ in objects]


def build_split(out_root, split, num_images, first_image_id, first_ann_id, rng, images,
                labels, pool):
    img_dir = osp.join(out_root, split)
    os.makedirs(img_dir, exist_ok=True)
    coco_images, annotations = [], []
    ann_id = first_ann_id
    for i in range(num_images):
        image_id = first_image_id + i
        image, objects = render_image(rng, images, labels, pool)
        file_name = f'{image_id:012d}.png'
        write_png(osp.join(img_dir, file_name), image)
        coco_images.append(dict(id=image_id, file_name=file_name, height=int(image.shape[0]),
                                width=int(image.shape[1]), license=1))
        for label, (x0, y0, x1, y1) in objects:
            bw, bh = x1 - x0, y1 - y0
            annotations.append(dict(
                id=ann_id, image_id=image_id, category_id=label + 1,
                bbox=[x0, y0, bw, bh], area=float(bw * bh), iscrowd=0,
                segmentation=[[x0, y0, x1, y0, x1, y1, x0, y1]]))
            ann_id += 1
    return coco_images, annotations


def coco_dict(coco_images, annotations, split):
    return dict(
        info=dict(description=f'mmattn toy COCO ({split}): scikit-learn handwritten digits '
                  'on textured backgrounds', version=str(GENERATOR_VERSION), year=2017,
                  contributor='mmattn tools/dataset_converters/make_toy_coco.py'),
        licenses=[dict(id=1, name='BSD-3-Clause (scikit-learn / UCI optical digits)',
                       url='https://scikit-learn.org/stable/datasets/toy_dataset.html')],
        images=coco_images,
        annotations=annotations,
        categories=[dict(id=i + 1, name=name, supercategory='digit')
                    for i, name in enumerate(CLASSES)])


def stamp_for(args):
    return dict(generator='make_toy_coco', version=GENERATOR_VERSION,
                num_train=args.num_train, num_val=args.num_val, seed=args.seed)


def is_complete(out, stamp):
    """The stamp matches and every file it promises is there."""
    if read_stamp(out, STAMP_NAME) != stamp:
        return False
    for split, n in (('train2017', stamp['num_train']), ('val2017', stamp['num_val'])):
        ann = osp.join(out, 'annotations', f'instances_{split}.json')
        img_dir = osp.join(out, split)
        if not osp.isfile(ann) or not osp.isdir(img_dir):
            return False
        if sum(1 for f in os.listdir(img_dir) if f.endswith('.png')) != n:
            return False
    return True


def generate(out, num_train=300, num_val=60, seed=0, force=False):
    """Write the dataset under ``out`` unless an identical one is there; returns a summary."""
    args = argparse.Namespace(num_train=num_train, num_val=num_val, seed=seed)
    if num_train < 1 or num_val < 1:
        raise ValueError('--num-train and --num-val must be at least 1')
    stamp = stamp_for(args)
    if not force and is_complete(out, stamp):
        return f'toy COCO already up to date in {out} (nothing to do)'
    folders = ('train2017', 'val2017', 'annotations')
    if not force:
        refuse_foreign_data(out, STAMP_NAME, folders)

    images, labels = load_digit_images()
    train_pool, val_pool = split_digits(labels, seed)
    with staged_output(out, STAMP_NAME, stamp, folders, prefix='.toy_coco_tmp_') as tmp:
        os.makedirs(osp.join(tmp, 'annotations'))
        counts = {}
        next_image_id, next_ann_id = 1, 1
        for split, n, pool, split_seed in (('train2017', num_train, train_pool, 1),
                                           ('val2017', num_val, val_pool, 2)):
            rng = np.random.default_rng([seed, split_seed])
            coco_images, anns = build_split(tmp, split, n, next_image_id, next_ann_id, rng,
                                            images, labels, pool)
            with open(osp.join(tmp, 'annotations', f'instances_{split}.json'), 'w') as f:
                json.dump(coco_dict(coco_images, anns, split), f)
            counts[split] = (len(coco_images), len(anns))
            next_image_id += n
            next_ann_id += len(anns)
    (ti, ta), (vi, va) = counts['train2017'], counts['val2017']
    return (f'toy COCO written to {out}: train2017 {ti} images / {ta} boxes, val2017 {vi} '
            f'images / {va} boxes, {len(CLASSES)} classes (digits 0-9)')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='data/toy_coco', help='dataset root to write')
    parser.add_argument('--num-train', type=int, default=300, help='training images')
    parser.add_argument('--num-val', type=int, default=60, help='validation images')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--force', action='store_true',
                        help='regenerate even if an up-to-date dataset is there')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    print(generate(args.out, args.num_train, args.num_val, args.seed, args.force))
    return 0


if __name__ == '__main__':
    sys.exit(main())
