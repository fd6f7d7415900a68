"""Write a small street-scene segmentation dataset in the on-disk layout of Cityscapes.

The scenes are drawn, the pixels are photographs: every region is a crop of scikit-learn's two
sample photographs (``sklearn.datasets.load_sample_images``, shipped inside the scikit-learn
package, so nothing is downloaded). Sky comes from the sky of ``china.jpg``, buildings from its
pagoda, vegetation from its trees, the road from its lake turned to grey asphalt, the sidewalk
from the petals of ``flower.jpg`` turned to pale paving; cars and people are painted shapes
shaded with photograph texture. A street runs to a vanishing point on the horizon, with
buildings on both sides, trees, cars on the road, people on the sidewalk and, on some frames, the
ego vehicle's bonnet at the bottom (ignored in training, as in Cityscapes).

The output has the layout that mmseg's ``CityscapesDataset`` and the official evaluation
(cityscapesscripts, mmseg's ``CityscapesMetric``) read unchanged::

    data/toy_cityscapes/
        leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png       RGB
        gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelTrainIds.png   train ids
        gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png        label ids
        gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_instanceIds.png     16 bit

``labelTrainIds`` holds the 19 training ids (0..18) and 255 (ignore) as mmseg trains on them;
``labelIds`` and ``instanceIds`` follow the official definitions (``labelId * 1000 + k`` for
the k-th car or person of a frame), which the Cityscapes metric reads. Present classes: road,
sidewalk, building, vegetation, sky, person and car (train ids 0, 1, 2, 8, 10, 11, 13); the
ego vehicle is 255.

The generator is deterministic: the same version and arguments give the same files on a given
installation (the photographs are JPEG files decoded by Pillow), and a stamp file lets a
second run return at once.

Usage::

    python tools/dataset_converters/make_toy_cityscapes.py [--out data/toy_cityscapes]
        [--num-train 100] [--num-val 20] [--height 128] [--width 256] [--seed 0] [--force]
"""
import argparse
import os
import os.path as osp
import sys

import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _toy_output import (read_stamp, refuse_foreign_data, staged_output,  # noqa: E402
                         write_png)

# Bump when the output for given arguments changes; the stamp then no longer matches.
GENERATOR_VERSION = 1
STAMP_NAME = '.toy_cityscapes_stamp.json'

TRAIN_CITIES = ('aachen', 'bochum', 'bremen')
VAL_CITIES = ('frankfurt', )
FRAME = 19  # the annotated frame of every Cityscapes snippet is its 20th

# (name, labelId, trainId, hasInstances) of the official Cityscapes table
# (cityscapesscripts/helpers/labels.py) for the classes drawn here.
LABELS = {
    'ego vehicle': (1, 255, False),
    'road': (7, 0, False),
    'sidewalk': (8, 1, False),
    'building': (11, 2, False),
    'vegetation': (21, 8, False),
    'sky': (23, 10, False),
    'person': (24, 11, True),
    'car': (26, 13, True),
}
TRAIN_ID_OF = {lid: tid for lid, tid, _ in LABELS.values()}
LABEL_ID = {name: lid for name, (lid, _, _) in LABELS.items()}
PRESENT_TRAIN_IDS = tuple(sorted(tid for _, tid, _ in LABELS.values() if tid != 255))
SUFFIXES = dict(img='_leftImg8bit.png', train_ids='_gtFine_labelTrainIds.png',
                label_ids='_gtFine_labelIds.png', instance_ids='_gtFine_instanceIds.png')

# Where each texture comes from: (image, y0, y1, x0, x1) in the full-size 427x640 photographs.
# The photographs are halved before cropping so that their textures suit 128x256 frames.
SOURCES = {
    'sky': [('china', 5, 130, 340, 600)],
    'building': [('china', 150, 330, 100, 300)],
    'vegetation': [('china', 345, 427, 0, 290), ('china', 290, 427, 390, 640)],
    'road': [('china', 235, 300, 360, 540)],
    'sidewalk': [('flower', 100, 340, 180, 440)],
    'shade': [('flower', 0, 427, 0, 160), ('china', 150, 330, 100, 300)],
}
CAR_COLOURS = ((170, 30, 30), (30, 50, 140), (225, 225, 220), (35, 35, 40), (150, 155, 160),
               (200, 170, 40), (40, 110, 60))
CLOTH_COLOURS = ((40, 40, 70), (120, 30, 40), (60, 60, 60), (20, 90, 120), (150, 120, 80),
                 (200, 200, 190))
SKIN_COLOURS = ((225, 185, 150), (170, 120, 90), (110, 75, 55))


def load_photos():
    """scikit-learn's sample photographs, halved (2x2 means), as float RGB arrays."""
    try:
        from sklearn.datasets import load_sample_images
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise SystemExit('make_toy_cityscapes.py needs scikit-learn (pip install '
                         'scikit-learn): its textures are photographs shipped with it.') from e
    data = load_sample_images()
    photos = {}
    for path, image in zip(data.filenames, data.images):
        name = osp.splitext(osp.basename(path))[0]
        img = image.astype(np.float64)
        h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
        img = img[:h, :w]
        photos[name] = (img[0::2, 0::2] + img[1::2, 0::2] + img[0::2, 1::2] +
                        img[1::2, 1::2]) / 4
    return photos


def texture_sources(photos):
    return {kind: [photos[name][y0 // 2:y1 // 2, x0 // 2:x1 // 2]
                   for name, y0, y1, x0, x1 in regions]
            for kind, regions in SOURCES.items()}


def mirror_index(n_out, n_src, start):
    """Indices 0..n_src-1 walked back and forth from ``start``: seamless mirror tiling."""
    idx = (start + np.arange(n_out)) % (2 * n_src)
    return np.where(idx < n_src, idx, 2 * n_src - 1 - idx)


def texture(rng, sources, kind, h, w):
    """An h x w x 3 crop of a random source of ``kind``, mirror-tiled when too small."""
    srcs = sources[kind]
    src = srcs[int(rng.integers(len(srcs)))]
    sh, sw = src.shape[:2]
    tex = src[mirror_index(h, sh, int(rng.integers(sh)))][:, mirror_index(
        w, sw, int(rng.integers(sw)))]
    return tex[:, ::-1] if rng.random() < 0.5 else tex


def luminance(rgb):
    return rgb @ np.array([0.299, 0.587, 0.114])


class Scene:
    """One frame: the RGB canvas and its label and instance maps, painted back to front."""

    def __init__(self, h, w):
        self.h, self.w = h, w
        self.rgb = np.zeros((h, w, 3))
        self.label_ids = np.full((h, w), LABEL_ID['sky'], np.uint8)
        self.instance_ids = np.full((h, w), LABEL_ID['sky'], np.int32)
        self.counts = {}
        self.yy, self.xx = np.mgrid[0:h, 0:w].astype(np.float64)

    def paint(self, mask, pixels, name):
        """Put ``pixels`` (h x w x 3, or a colour) and the label ``name`` under ``mask``."""
        if not mask.any():
            return
        self.rgb[mask] = pixels[mask] if np.ndim(pixels) == 3 else pixels
        label_id, _, has_instances = LABELS[name]
        self.label_ids[mask] = label_id
        if has_instances:
            k = self.counts.get(name, 0)
            self.counts[name] = k + 1
            self.instance_ids[mask] = label_id * 1000 + k
        else:
            self.instance_ids[mask] = label_id

    def ellipse(self, cy, cx, ry, rx):
        return ((self.yy - cy) / max(ry, 0.5))**2 + ((self.xx - cx) / max(rx, 0.5))**2 <= 1

    def rect(self, y0, y1, x0, x1):
        return (self.yy >= y0) & (self.yy < y1) & (self.xx >= x0) & (self.xx < x1)


def shaded(rng, sources, colour, h, w, strength):
    """A flat ``colour`` modulated by the luminance of a photograph crop."""
    lum = luminance(texture(rng, sources, 'shade', h, w))
    lum = (lum - lum.mean()) / (lum.std() + 1e-6)
    return np.asarray(colour, np.float64)[None, None, :] * (1 + strength * lum[:, :, None])


def render_scene(rng, sources, h, w):
    """A street towards a vanishing point; returns (rgb uint8, labelIds, instanceIds)."""
    s = Scene(h, w)
    yy, xx = s.yy, s.xx
    hy = float(rng.uniform(0.36, 0.5) * h)          # horizon row
    vx = float(rng.uniform(0.38, 0.62) * w)         # vanishing point column
    k = float(rng.uniform(0.08, 0.2))               # slope of the facades' foot
    ground_line = hy + k * np.abs(xx - vx)

    s.paint(np.ones((h, w), bool), texture(rng, sources, 'sky', h, w), 'sky')

    # facades on both sides, each a run of buildings of random width and height
    facade = texture(rng, sources, 'building', h, w)
    for side in (-1, 1):
        gap = float(rng.uniform(0.04, 0.18) * w)
        x = 0.0 if side < 0 else vx + gap
        end = vx - gap if side < 0 else float(w)
        while x < end:
            bw = float(rng.uniform(0.06, 0.22) * w)
            top = float(rng.uniform(0.03 * h, max(0.04 * h, hy - 0.08 * h)))
            s.paint((xx >= x) & (xx < min(x + bw, end)) & (yy >= top) & (yy <= ground_line),
                    facade, 'building')
            x += bw

    green = texture(rng, sources, 'vegetation', h, w)
    # a strip of distant trees along the horizon, then a few nearer crowns
    band = float(rng.uniform(0.02, 0.08) * h)
    s.paint((yy >= hy - band) & (yy <= ground_line) & (np.abs(xx - vx) < 0.3 * w)
            & (s.label_ids == LABEL_ID['sky']), green, 'vegetation')
    for _ in range(int(rng.integers(0, 4))):
        cx = float(rng.uniform(0, w))
        cy = float(rng.uniform(hy - 0.25 * h, hy))
        ry = float(rng.uniform(0.05, 0.15) * h)
        rx = ry * float(rng.uniform(0.8, 1.5))
        crown = s.ellipse(cy, cx, ry, rx)
        trunk = s.rect(cy, hy + k * abs(cx - vx) + 1, cx - 0.01 * w - 0.5, cx + 0.01 * w + 0.5)
        s.paint(crown | trunk, green, 'vegetation')

    # the ground: asphalt between two lines from the vanishing point, paving elsewhere
    below = yy > ground_line
    depth = np.clip(yy - hy, 0, None)
    left_slope, right_slope = (float(v) for v in rng.uniform(1.0, 2.4, size=2))
    road = below & (xx >= vx - depth * left_slope) & (xx <= vx + depth * right_slope)
    road_rgb = luminance(texture(rng, sources, 'road', h, w))
    road_rgb = (road_rgb - road_rgb.mean()) * 0.8 + rng.uniform(70, 100)
    road_rgb = np.repeat(road_rgb[:, :, None], 3, axis=2)
    # dashed centre line: still road, as in the Cityscapes annotation
    centre = (np.abs(xx - vx - depth * (right_slope - left_slope) / 2) < 0.4 + depth * 0.02) \
        & (np.mod(depth, 12) < 6)
    road_rgb[centre] = 225
    s.paint(road, road_rgb, 'road')
    paving = luminance(texture(rng, sources, 'sidewalk', h, w))
    paving = (paving - paving.mean()) * 0.5 + rng.uniform(140, 180)
    paving_tint = np.array([1.0, 0.96, 0.9]) * rng.uniform(0.95, 1.05, size=3)
    s.paint(below & ~road, paving[:, :, None] * paving_tint, 'sidewalk')

    # cars on the road and people on the sidewalk, far ones first
    objects = []
    for _ in range(int(rng.integers(0, 4))):
        objects.append(('car', float(rng.uniform(hy + 0.2 * (h - hy), h - 1))))
    for _ in range(int(rng.integers(0, 4))):
        objects.append(('person', float(rng.uniform(hy + 0.1 * (h - hy), h - 1))))
    objects.sort(key=lambda o: o[1])
    for kind, bottom in objects:
        scale = (bottom - hy) / (h - hy)
        row = min(int(bottom), h - 1)
        if kind == 'car':
            cw = max(6.0, scale * float(rng.uniform(0.22, 0.36)) * w)
            ch = cw * float(rng.uniform(0.5, 0.65))
            lo, hi = vx - (bottom - hy) * left_slope + cw / 2, vx + (bottom - hy) * right_slope \
                - cw / 2
            if lo > hi:
                continue
            cx = float(rng.uniform(lo, hi))
            body = s.rect(bottom - 0.6 * ch, bottom - 0.12 * ch, cx - cw / 2, cx + cw / 2)
            cabin = s.rect(bottom - ch, bottom - 0.55 * ch, cx - 0.32 * cw, cx + 0.32 * cw)
            wheels = (s.ellipse(bottom - 0.13 * ch, cx - 0.3 * cw, 0.13 * ch, 0.1 * cw)
                      | s.ellipse(bottom - 0.13 * ch, cx + 0.3 * cw, 0.13 * ch, 0.1 * cw))
            colour = CAR_COLOURS[int(rng.integers(len(CAR_COLOURS)))]
            rgb = shaded(rng, sources, colour, h, w, 0.12)
            window = s.rect(bottom - 0.92 * ch, bottom - 0.6 * ch, cx - 0.27 * cw,
                            cx + 0.27 * cw)
            rgb[window] = rgb[window] * 0.25 + np.array([40, 55, 70])
            rgb[wheels] = 20
            s.paint(body | cabin | wheels, rgb, 'car')
        else:
            cols = np.flatnonzero(s.label_ids[row] == LABEL_ID['sidewalk'])
            if cols.size == 0:
                continue
            ph = max(5.0, scale * float(rng.uniform(0.35, 0.55)) * h)
            pw = ph * 0.3
            cx = float(cols[int(rng.integers(cols.size))])
            head = s.ellipse(bottom - 0.9 * ph, cx, 0.1 * ph, 0.08 * ph + 0.3)
            torso = s.rect(bottom - 0.8 * ph, bottom - 0.42 * ph, cx - pw / 2, cx + pw / 2)
            legs = (s.rect(bottom - 0.45 * ph, bottom, cx - pw / 2, cx - pw * 0.05)
                    | s.rect(bottom - 0.45 * ph, bottom, cx + pw * 0.05, cx + pw / 2))
            rgb = shaded(rng, sources, CLOTH_COLOURS[int(rng.integers(len(CLOTH_COLOURS)))],
                         h, w, 0.15)
            rgb[legs] = shaded(rng, sources, CLOTH_COLOURS[int(rng.integers(
                len(CLOTH_COLOURS)))], h, w, 0.15)[legs]
            rgb[head] = SKIN_COLOURS[int(rng.integers(len(SKIN_COLOURS)))]
            s.paint(head | torso | legs, rgb, 'person')

    if rng.random() < 0.5:
        # the bonnet of the recording car, which Cityscapes labels "ego vehicle" (ignored)
        lift = float(rng.uniform(0.05, 0.1) * h)
        curve = lift * (1 - 0.6 * ((xx - w / 2) / (w / 2))**2)
        hood = yy >= h - curve
        shade = 35 + 30 * (h - yy) / max(lift, 1)
        s.paint(hood, np.stack([shade, shade * 1.05, shade * 1.15], axis=2), 'ego vehicle')

    # the camera: exposure and white balance vary from frame to frame, plus sensor noise
    rgb = s.rgb * rng.uniform(0.85, 1.15) * rng.uniform(0.95, 1.05, size=3)
    rgb = rgb + rng.normal(0, 3, size=rgb.shape)
    rgb = np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    return rgb, s.label_ids, s.instance_ids


def to_train_ids(label_ids):
    lut = np.full(256, 255, np.uint8)
    for label_id, train_id in TRAIN_ID_OF.items():
        lut[label_id] = train_id
    return lut[label_ids]


def frame_stem(city, seq):
    return f'{city}_{seq:06d}_{FRAME:06d}'


def build_split(out_root, split, cities, num_images, rng, sources, h, w, pixel_counts):
    """Write one split; cities take turns so that each holds about as many frames."""
    for i in range(num_images):
        city = cities[i % len(cities)]
        seq = i // len(cities)
        img_dir = osp.join(out_root, 'leftImg8bit', split, city)
        gt_dir = osp.join(out_root, 'gtFine', split, city)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(gt_dir, exist_ok=True)
        rgb, label_ids, instance_ids = render_scene(rng, sources, h, w)
        train_ids = to_train_ids(label_ids)
        stem = frame_stem(city, seq)
        write_png(osp.join(img_dir, stem + SUFFIXES['img']), rgb)
        write_png(osp.join(gt_dir, stem + SUFFIXES['train_ids']), train_ids)
        write_png(osp.join(gt_dir, stem + SUFFIXES['label_ids']), label_ids)
        write_png(osp.join(gt_dir, stem + SUFFIXES['instance_ids']),
                  instance_ids.astype(np.uint16))
        ids, counts = np.unique(train_ids, return_counts=True)
        for train_id, count in zip(ids.tolist(), counts.tolist()):
            pixel_counts[train_id] = pixel_counts.get(train_id, 0) + count


def stamp_for(num_train, num_val, seed, height, width):
    return dict(generator='make_toy_cityscapes', version=GENERATOR_VERSION,
                num_train=num_train, num_val=num_val, seed=seed, height=height, width=width)


def count_files(root, suffix):
    return sum(name.endswith(suffix) for _, _, names in os.walk(root) for name in names)


def is_complete(out, stamp):
    """The stamp matches and every file it promises is there."""
    if read_stamp(out, STAMP_NAME) != stamp:
        return False
    for split, n in (('train', stamp['num_train']), ('val', stamp['num_val'])):
        if count_files(osp.join(out, 'leftImg8bit', split), SUFFIXES['img']) != n:
            return False
        for key in ('train_ids', 'label_ids', 'instance_ids'):
            if count_files(osp.join(out, 'gtFine', split), SUFFIXES[key]) != n:
                return False
    return True


def generate(out, num_train=100, num_val=20, seed=0, height=128, width=256, force=False):
    """Write the dataset under ``out`` unless an identical one is there; returns a summary."""
    if num_train < 1 or num_val < 1:
        raise ValueError('--num-train and --num-val must be at least 1')
    if height < 32 or width < 32:
        raise ValueError(f'--height and --width must be at least 32, got {height}x{width}')
    stamp = stamp_for(num_train, num_val, seed, height, width)
    if not force and is_complete(out, stamp):
        return f'toy Cityscapes already up to date in {out} (nothing to do)'
    folders = ('leftImg8bit', 'gtFine')
    if not force:
        refuse_foreign_data(out, STAMP_NAME, folders)

    sources = texture_sources(load_photos())
    pixel_counts = {}
    with staged_output(out, STAMP_NAME, stamp, folders, prefix='.toy_cityscapes_tmp_') as tmp:
        for split, cities, n, split_seed in (('train', TRAIN_CITIES, num_train, 1),
                                             ('val', VAL_CITIES, num_val, 2)):
            rng = np.random.default_rng([seed, split_seed])
            build_split(tmp, split, cities, n, rng, sources, height, width, pixel_counts)
    total = sum(pixel_counts.values())
    classes = sorted(t for t in pixel_counts if t != 255)
    ignored = 100.0 * pixel_counts.get(255, 0) / total
    return (f'toy Cityscapes written to {out}: train {num_train} / val {num_val} frames of '
            f'{height}x{width}, train ids {",".join(map(str, classes))} present, '
            f'{ignored:.1f}% pixels ignored (255)')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='data/toy_cityscapes', help='dataset root to write')
    parser.add_argument('--num-train', type=int, default=100, help='training frames')
    parser.add_argument('--num-val', type=int, default=20, help='validation frames')
    parser.add_argument('--height', type=int, default=128, help='frame height in pixels')
    parser.add_argument('--width', type=int, default=256, help='frame width in pixels')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--force', action='store_true',
                        help='regenerate even if an up-to-date dataset is there')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    print(generate(args.out, args.num_train, args.num_val, args.seed, args.height, args.width,
                   args.force))
    return 0


if __name__ == '__main__':
    sys.exit(main())
