"""Write a small ImageNet-format classification dataset of handwritten digits ("toy ImageNet").

The pixels are those of the toy COCO (``make_toy_coco.py``): scikit-learn's copy of the UCI
optical digits, upscaled 2x-3.5x and painted onto a dark textured background, one digit a
picture, so a classifier trained here sees the digits at the sizes the toy detector finds
them. The output has the on-disk layout mmpretrain's ``ImageNet`` dataset reads (class
folders for train, a flat val folder, and the ``meta/`` annotation lists with one
``path label`` line per image)::

    data/toy_imagenet/
        train/n00000000/000001.png ...  (one folder per class: digits 0-9)
        val/000801.png ...
        meta/train.txt    "n00000000/000001.png 0"
        meta/val.txt      "000801.png 0"
        meta/classes.txt  the class names in label order

so ``dict(type='ImageNet', data_root='data/toy_imagenet', split='train')`` reads it as it
reads ImageNet (with ``metainfo=dict(classes=...)`` for its ten classes). Train and val draw
their digits from disjoint parts of the digit set (75% / 25%, as the toy COCO's), so the
validation accuracy measures handwriting the model has not seen. The generator is
deterministic: the same version and arguments give the same bytes, and a stamp file lets a
second run return at once.

Usage::

    python tools/dataset_converters/make_toy_imagenet.py [--out data/toy_imagenet]
        [--num-train 800] [--num-val 200] [--seed 0] [--force]
"""
import argparse
import os
import os.path as osp
import sys

import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _toy_output import (read_stamp, refuse_foreign_data, staged_output,  # noqa: E402
                         write_png)
from make_toy_coco import (load_digit_images, make_background, paint_ink,  # noqa: E402
                           split_digits, upscale)

# Bump when the output for given arguments changes; the stamp then no longer matches.
GENERATOR_VERSION = 1
STAMP_NAME = '.toy_imagenet_stamp.json'

CLASSES = tuple(str(d) for d in range(10))
# ImageNet's class folders are WordNet ids; these are placeholders of the same form
FOLDERS = tuple(f'n{i:08d}' for i in range(len(CLASSES)))
IMAGE_SIZE = 32                       # square pictures
MIN_SCALE, MAX_SCALE = 2.0, 3.5       # digit upscaling: 8x8 -> 16..28 px, as in the toy COCO
SPLITS = ('train', 'val')


def render_image(rng, image, size=IMAGE_SIZE):
    """One ``size`` x ``size`` picture of the digit ``image`` at a random scale and place."""
    canvas = make_background(rng, size, size)
    scale_y = rng.uniform(MIN_SCALE, MAX_SCALE)
    scale_x = scale_y * rng.uniform(0.8, 1.2)
    dh = min(size, int(round(8 * scale_y)))
    dw = min(size, int(round(8 * scale_x)))
    alpha = np.clip(upscale(image, dh, dw), 0.0, 1.0)
    top = int(rng.integers(0, size - dh + 1))
    left = int(rng.integers(0, size - dw + 1))
    paint_ink(rng, canvas, alpha, top, left)
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8)


def build_split(out_root, split, num_images, first_id, rng, images, labels, pool):
    """Write ``num_images`` pictures, classes in turn (balanced); returns the ann lines."""
    lines = []
    for i in range(num_images):
        label = i % len(CLASSES)
        idx = int(rng.choice(pool[labels[pool] == label]))
        name = f'{first_id + i:06d}.png'
        rel = f'{FOLDERS[label]}/{name}' if split == 'train' else name
        path = osp.join(out_root, split, rel)
        os.makedirs(osp.dirname(path), exist_ok=True)
        write_png(path, render_image(rng, images[idx]))
        lines.append(f'{rel} {label}')
    return lines


def stamp_for(num_train, num_val, seed):
    return dict(generator='make_toy_imagenet', version=GENERATOR_VERSION,
                num_train=num_train, num_val=num_val, seed=seed)


def is_complete(out, stamp):
    """The stamp matches and every file it promises is there."""
    if read_stamp(out, STAMP_NAME) != stamp:
        return False
    for split in SPLITS:
        ann = osp.join(out, 'meta', f'{split}.txt')
        if not osp.isfile(ann):
            return False
        with open(ann) as f:
            rels = [line.rsplit(' ', 1)[0] for line in f if line.strip()]
        if len(rels) != stamp[f'num_{split}'] or not all(
                osp.isfile(osp.join(out, split, rel)) for rel in rels):
            return False
    return True


def generate(out, num_train=800, num_val=200, seed=0, force=False):
    """Write the dataset under ``out`` unless an identical one is there; returns a summary."""
    if num_train < len(CLASSES) or num_val < len(CLASSES):
        raise ValueError(f'--num-train and --num-val must be at least {len(CLASSES)} (one '
                         f'picture a class), got {num_train} and {num_val}')
    stamp = stamp_for(num_train, num_val, seed)
    if not force and is_complete(out, stamp):
        return f'toy ImageNet already up to date in {out} (nothing to do)'
    folders = ('train', 'val', 'meta')
    if not force:
        refuse_foreign_data(out, STAMP_NAME, folders)

    images, labels = load_digit_images()
    train_pool, val_pool = split_digits(labels, seed)
    with staged_output(out, STAMP_NAME, stamp, folders, prefix='.toy_imagenet_tmp_') as tmp:
        os.makedirs(osp.join(tmp, 'meta'))
        first_id = 1
        for split, n, pool, split_seed in (('train', num_train, train_pool, 1),
                                           ('val', num_val, val_pool, 2)):
            rng = np.random.default_rng([seed, split_seed])
            lines = build_split(tmp, split, n, first_id, rng, images, labels, pool)
            with open(osp.join(tmp, 'meta', f'{split}.txt'), 'w') as f:
                f.write('\n'.join(lines) + '\n')
            first_id += n
        with open(osp.join(tmp, 'meta', 'classes.txt'), 'w') as f:
            f.write('\n'.join(CLASSES) + '\n')
    return (f'toy ImageNet written to {out}: train {num_train} images, val {num_val} images, '
            f'{len(CLASSES)} classes (digits 0-9), {IMAGE_SIZE}x{IMAGE_SIZE} px')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='data/toy_imagenet', help='dataset root to write')
    parser.add_argument('--num-train', type=int, default=800, help='training images')
    parser.add_argument('--num-val', type=int, default=200, help='validation images')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--force', action='store_true',
                        help='regenerate even if an up-to-date dataset is there')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        print(generate(args.out, args.num_train, args.num_val, args.seed, args.force))
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
