"""Pictures of what the attention modules of a detector or segmentor look at, on one image.

    python tools/visualize_attention.py CONFIG [CHECKPOINT] IMAGE [--query X Y] [--out-dir DIR]

    python tools/visualize_attention.py configs/toy/faster_rcnn_se_r50_toy-coco.py \
        work_dirs/toy_se/epoch_6.pth data/toy_coco/val2017/000000000302.png

The config's model (mmdet or mmseg) is built, the checkpoint loaded if one is given (without
one the weights are the untrained initialisation), and IMAGE goes through the config's test
pipeline and the model (``mmdet.apis.inference_detector`` / ``mmseg.apis.inference_model``).
Forward hooks on every mmattn attention module read its maps as it runs; the modules are not
changed. What is read is declared by each class (its gates, or an ``attention_maps`` method;
see ``mmattn.models.BaseAttention`` and ``mmattn.visualization.attention_maps``):

- spatial gates (CBAM, BAM, sSE/scSE, SGE, triplet, coordinate attention, SimAM, residual
  attention, RGA, GE with an extent), GC's context weights and SIAU's part maps: heat maps over
  the image, one picture per stage (its blocks side by side, or one row per block where a
  module has several maps);
- Non-local, DANet's PAM, criss-cross, A^2, APNB/AFNB and OCR: the attention of one query pixel
  (``--query X Y`` in image pixels; the centre by default), marked with a cross, one picture
  per stage;
- channel gates (SE, ECA, GE, SRM, FcaNet, GSoP, SPA, cSE, CBAM's and RGA's channel gates, SK's
  branch weights): a plot of the weight of every channel, one picture per stage, one line per
  block.

A module with nothing to draw (DANet's CAM and the channel IAU attend between channels) is
listed with the reason its class gives; one whose class declares no maps is listed with what
to add. The pictures go to ``--out-dir`` with ``index.json`` describing them,
and the tool prints the index.

mmseg models run in whole-image mode (``model.test_cfg.mode='whole'``), so each module sees
the whole image once.
"""
import argparse
import json
import os
import os.path as osp
import re
import sys
from collections import OrderedDict

from mmengine.config import Config, DictAction

import mmattn  # noqa: F401  (registry scope; safe loading of mmengine checkpoints)
from mmattn.utils import silence_pinned_warnings

TOOL = 'visualize_attention'
GRID_COLS = 4  # blocks side by side in a picture where each block has one map


UNTRAINED = 'untrained: no checkpoint given, the weights are the initialisation'


class ToolError(Exception):
    """Bad input: the message says what was expected and what was given."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Save pictures of what the attention modules of a model look at on an '
        'image', usage='%(prog)s CONFIG [CHECKPOINT] IMAGE [options]')
    parser.add_argument('config', help='mmdet or mmseg config file')
    parser.add_argument('paths', nargs='+', metavar='[CHECKPOINT] IMAGE',
                        help='the checkpoint (optional: untrained weights without it), then '
                        'the image')
    parser.add_argument('--out-dir', help='where the pictures go (default: '
                        'work_dirs/attention_maps/<config name>/<image name>)')
    parser.add_argument('--query', type=float, nargs=2, metavar=('X', 'Y'),
                        help='the query pixel of Non-local, PAM, criss-cross, ... in image '
                        'pixels (x to the right, y down); default: the centre')
    parser.add_argument('--panel-size', type=int, default=320,
                        help='longer side of the image in each panel, in pixels (320)')
    parser.add_argument('--alpha', type=float, default=0.5,
                        help='opacity of the heat map over the image (0.5)')
    parser.add_argument('--cmap', default='jet', help='matplotlib colormap (jet)')
    parser.add_argument('--stretch', action='store_true',
                        help='colour every map from its minimum to its maximum, even a '
                        'near-constant one (range under 1e-3 of its mean), whose colours then '
                        'show differences of that size')
    parser.add_argument('--device', default=None,
                        help='device to run on (default: cuda:0 if available, else cpu)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value')
    args = parser.parse_args(argv)
    if len(args.paths) > 2:
        parser.error(f'expected CONFIG [CHECKPOINT] IMAGE, got {len(args.paths) + 1} paths')
    args.checkpoint = args.paths[0] if len(args.paths) == 2 else None
    args.image = args.paths[-1]
    return args


# -- inputs -----------------------------------------------------------------------------------
def check_inputs(args):
    """Files exist, the image reads, the query lies on it; returns the RGB image."""
    import mmcv
    if not osp.isfile(args.config):
        raise ToolError(f'no config file at {args.config!r}')
    if args.checkpoint is not None and not osp.isfile(args.checkpoint):
        raise ToolError(f'no checkpoint file at {args.checkpoint!r} (give CONFIG IMAGE to '
                        f'draw the untrained model)')
    if not osp.isfile(args.image):
        raise ToolError(f'no image file at {args.image!r}')
    try:
        image = mmcv.imread(args.image, channel_order='rgb')
    except Exception as e:  # noqa: BLE001 (mmcv raises several types for unreadable files)
        raise ToolError(f'cannot read {args.image!r} as an image: {e}') from e
    if image is None:
        raise ToolError(f'cannot read {args.image!r} as an image')
    h, w = image.shape[:2]
    if args.query is None:
        args.query = ((w - 1) / 2, (h - 1) / 2)
    x, y = args.query
    if not (0 <= x <= w - 1 and 0 <= y <= h - 1):
        raise ToolError(f'--query {x:g} {y:g} is outside the image {args.image!r} of {w} x '
                        f'{h} pixels: expected 0 <= X <= {w - 1} and 0 <= Y <= {h - 1}')
    if args.panel_size < 32:
        raise ToolError(f'--panel-size must be at least 32 pixels, got {args.panel_size}')
    if not 0 < args.alpha <= 1:
        raise ToolError(f'--alpha must be in (0, 1], got {args.alpha}')
    from matplotlib import colormaps
    if args.cmap not in colormaps:
        raise ToolError(f'--cmap {args.cmap!r} is not a matplotlib colormap (e.g. jet, '
                        f'viridis, magma)')
    return image


def load_cfg(args):
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    scope = cfg.get('default_scope')
    if scope not in ('mmdet', 'mmseg'):
        raise ToolError(f'{args.config}: default_scope is {scope!r}; this tool draws mmdet and '
                        f'mmseg models (inherit one of their configs through _base_)')
    if scope == 'mmseg':
        test_cfg = cfg.model.get('test_cfg') or {}
        if test_cfg.get('mode', 'whole') != 'whole':
            print(f"note: running the segmentor in whole-image mode instead of "
                  f"{test_cfg.get('mode')!r}, so that each module sees the whole image once")
        cfg.model.test_cfg = dict(test_cfg, mode='whole')
    return cfg, scope


def build_model(cfg, scope, checkpoint, device):
    """The config's model, as mmdet's ``init_detector`` / mmseg's ``init_model`` build it
    (no pretrained backbone download, SyncBN as BN, ``model.cfg`` for the inference API),
    with the checkpoint loaded by mmengine."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    init_default_scope(scope)
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
        cfg.model.pretrained = None
        cfg.model.train_cfg = None
    if isinstance(cfg.model.get('backbone'), dict) and 'init_cfg' in cfg.model.backbone:
        cfg.model.backbone.init_cfg = None  # no download of ImageNet weights
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.cfg = cfg  # the inference APIs read the test pipeline from it
    if checkpoint is not None:
        load_weights(model, checkpoint, cfg.filename)
    model.to(device)
    model.eval()
    return model


def load_weights(model, checkpoint, config):
    """Load a checkpoint (mmengine's loader: local paths, URLs, torch's safe unpickler with
    mmattn's allow-list) into the model, through the modules' own key remapping (mmattn's
    heads read mmseg's checkpoints); refuse one that matches nothing."""
    from mmengine.runner import CheckpointLoader
    try:
        ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    except Exception as e:  # noqa: BLE001 (a corrupt file raises many types)
        raise ToolError(f'cannot load the checkpoint {checkpoint!r}: {e}') from e
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ToolError(f'{checkpoint!r} is not a checkpoint: expected a dict of tensors (or '
                        f'one with a "state_dict"), got {type(ckpt).__name__}')
    state = OrderedDict((k[7:] if k.startswith('module.') else k, v) for k, v in state.items())
    missing, unexpected = model.load_state_dict(state, strict=False)
    # BN counters are not reported missing by torch when absent: count the other tensors
    own = [k for k in model.state_dict() if not k.endswith('num_batches_tracked')]
    missing = [k for k in missing if not k.endswith('num_batches_tracked')]
    if len(missing) == len(own):
        raise ToolError(f'the checkpoint {checkpoint!r} holds none of the weights of the model '
                        f'built from {config!r} ({len(own)} tensors); is it a checkpoint of '
                        f'this config?')
    if missing:
        print(f'note: the checkpoint lacks {len(missing)} of the model\'s {len(own)} tensors '
              f'(e.g. {missing[0]}); those keep their initial values')
    if unexpected:
        print(f'note: {len(unexpected)} tensors of the checkpoint are not in the model '
              f'(e.g. {unexpected[0]})')


def query_point(query_xy, image_hw, img_hw, input_hw):
    """The query pixel (x, y) of the original image as a fraction of the network input.

    The test pipeline resizes the image to ``img_hw`` and the data preprocessor pads it to
    ``input_hw`` (bottom and right); feature maps cover the padded input. The pixel's centre
    is used, so that every pixel of the image falls in the cell that covers it.
    """
    from mmattn.visualization.attention_maps import QueryPoint
    x, y = query_xy
    return QueryPoint((y + 0.5) / image_hw[0] * img_hw[0] / input_hw[0],
                      (x + 0.5) / image_hw[1] * img_hw[1] / input_hw[1])


def run_model(model, scope, image_path, recorder, image_hw, query_xy):
    """Run the model on the image with the recorder's hooks; returns the Frame parts."""
    frame = {}

    def on_input(module, inputs, output):
        # the network input is known here, before any attention module runs: place the query
        batch = output['inputs']
        meta = output['data_samples'][0].metainfo
        in_h, in_w = batch.shape[-2:]
        img_h, img_w = meta.get('img_shape', (in_h, in_w))[:2]
        frame.update(input_hw=(int(in_h), int(in_w)), img_hw=(int(img_h), int(img_w)))
        recorder.query = query_point(query_xy, image_hw, frame['img_hw'], frame['input_hw'])

    handle = model.data_preprocessor.register_forward_hook(on_input)
    try:
        with recorder:
            if scope == 'mmdet':
                from mmdet.apis import inference_detector
                inference_detector(model, image_path)
            else:
                from mmseg.apis import inference_model
                inference_model(model, image_path)
    finally:
        handle.remove()
    if not frame:
        raise ToolError('the model\'s data preprocessor did not run as a module; cannot place '
                        'the feature maps on the image')
    return frame


# -- pictures ---------------------------------------------------------------------------------
def group_key(name):
    """Blocks of one stage share a picture: 'backbone.layer2.3.se' -> ('backbone.layer2', 'se').

    The last all-digit part of the name is the block (or level) index; a name without one is a
    group of its own.
    """
    parts = name.split('.')
    idx = [i for i, p in enumerate(parts) if p.isdigit()]
    if not idx:
        return name, ''
    i = idx[-1]
    return '.'.join(parts[:i]), '.'.join(parts[i + 1:])


def safe_name(text):
    return re.sub(r'[^A-Za-z0-9_-]+', '_', text).strip('_') or 'model'


def draw(records, image, frame_parts, args, out_dir):
    """Save the pictures; returns the index entries."""
    import cv2
    import mmcv
    import numpy as np

    from mmattn.visualization.attention_maps import maps_caption
    from mmattn.visualization.drawing import (BANNER_HEIGHT, Frame, PanelPainter, display_size,
                                              plot_channels, tile)
    dh, dw = display_size(image.shape[:2], args.panel_size)
    frame = Frame(frame_parts['input_hw'], frame_parts['img_hw'], (dh, dw))
    shown = mmcv.imresize(image, (dw, dh), interpolation='area' if dh < image.shape[0]
                          else 'bilinear')
    qx, qy = args.query
    marker = ((qx + 0.5) * dw / image.shape[1], (qy + 0.5) * dh / image.shape[0])
    painter = PanelPainter(args.cmap, args.alpha, stretch=args.stretch)
    untrained = UNTRAINED if args.checkpoint is None else None

    calls = {}
    for r in records:
        calls[r.name] = calls.get(r.name, 0) + 1
    groups = OrderedDict()
    for r in records:
        prefix, suffix = group_key(r.name)
        groups.setdefault((prefix, suffix, r.cls.__name__), []).append(r)

    def label(r):
        return r.name + (f' (call {r.call + 1})' if calls[r.name] > 1 else '')

    index = []
    for (prefix, suffix, cls_name), recs in groups.items():
        stem = safe_name('_'.join(p for p in (prefix, suffix) if p)) + '_' + cls_name
        shows = maps_caption(recs[0].cls)
        rows, kinds, flat_panels = [], [], []
        for r in recs:
            row = []
            for kind, maps in (('spatial', r.maps.spatial), ('query', r.maps.query)):
                for map_name, fmap in maps.items():
                    heat = frame.to_display(fmap, 'bilinear' if kind == 'spatial'
                                            else 'nearest')
                    flat_before = len(painter.near_constant)
                    row.append(painter.panel(shown, heat, label(r), map_name,
                                             marker if kind == 'query' else None))
                    if len(painter.near_constant) > flat_before:
                        flat_panels.append(len(kinds))
                    kinds.append(kind)
            if row:
                rows.append(row)
        if rows:
            panels = sum(len(row) for row in rows)
            if all(len(row) == 1 for row in rows):
                # one map per block: the blocks side by side, GRID_COLS to a row
                flat = [row[0] for row in rows]
                rows = [flat[i:i + GRID_COLS] for i in range(0, len(flat), GRID_COLS)]
            path = osp.join(out_dir, stem + '.png')
            picture = tile(rows)
            if untrained:
                picture = np.concatenate([
                    painter.banner(picture.shape[1], [untrained, 'untrained: no checkpoint given',
                                                      'untrained']), picture])
            # lossless, as small as PNG gets (the pictures are small: the time is negligible)
            mmcv.imwrite(np.ascontiguousarray(picture[..., ::-1]), path,
                         params=[cv2.IMWRITE_PNG_COMPRESSION, 9])
            index.append(dict(file=osp.basename(path), kind='heatmap', cls=cls_name,
                              modules=[label(r) for r in recs if r.maps.spatial or
                                       r.maps.query],
                              rows=len(rows), cols=max(len(row) for row in rows),
                              panels=panels, height=int(picture.shape[0]),
                              width=int(picture.shape[1]), query='query' in kinds,
                              banner=BANNER_HEIGHT if untrained else 0,
                              # the panels (in reading order) drawn as near-constant
                              near_constant=flat_panels,
                              shows=shows))
        series = OrderedDict()
        for r in recs:
            for map_name, vec in r.maps.channel.items():
                series.setdefault(map_name, []).append((label(r), vec.numpy()))
        if series:
            path = osp.join(out_dir, stem + '_channels.png')
            title = f'{cls_name}: {prefix}' + (f' (.{suffix})' if suffix else '')
            if untrained:
                title += f'\n{untrained}'
            h, w = plot_channels(path, title, series)
            index.append(dict(file=osp.basename(path), kind='channels', cls=cls_name,
                              modules=[label(r) for r in recs if r.maps.channel],
                              maps=list(series), height=h, width=w, shows=shows))
    return index


def main(argv=None):
    silence_pinned_warnings()  # the pinned stack's deprecation notices (mmattn/utils/noise.py)
    args = parse_args(argv)
    try:
        return _main(args)
    except ToolError as e:
        print(f'error: {TOOL}: {e}', file=sys.stderr)
        return 2


def _main(args):
    import torch

    from mmattn.visualization.attention_maps import AttentionRecorder, find_attention_modules
    image = check_inputs(args)
    cfg, scope = load_cfg(args)
    device = args.device or ('cuda:0' if torch.cuda.is_available() else 'cpu')
    model = build_model(cfg, scope, args.checkpoint, device)
    if args.checkpoint is None:
        print(f'note: no checkpoint given: the pictures show the untrained initialisation of '
              f'the model of {args.config} (each picture says so)')
    if not find_attention_modules(model):
        raise ToolError(f'the model of {args.config!r} holds no mmattn attention module (no '
                        f'mmattn.models.BaseAttention in it): nothing to draw. Add one through '
                        f'the backbone\'s plugins, a neck or a head (see configs/)')

    recorder = AttentionRecorder(model)
    frame = run_model(model, scope, args.image, recorder, image.shape[:2], args.query)

    drawn = [r for r in recorder.records if r.maps is not None]
    out_dir = args.out_dir or osp.join(
        'work_dirs', 'attention_maps', osp.splitext(osp.basename(args.config))[0],
        osp.splitext(osp.basename(args.image))[0])
    os.makedirs(out_dir, exist_ok=True)
    index = draw(drawn, image, frame, args, out_dir) if drawn else []

    # modules without a picture: one line per class and reason
    skipped = OrderedDict()
    for r in recorder.records:
        if r.maps is None:
            skipped.setdefault((r.cls.__name__, r.reason), []).append(r.name)
    for name, module in recorder.not_run():
        skipped.setdefault((type(module).__name__, 'it did not run during the forward pass'),
                           []).append(name)
    notes = [dict(cls=c, reason=reason, modules=names)
             for (c, reason), names in skipped.items()]
    # the query pixel means something only to the modules with pixel-to-pixel attention
    query = list(args.query) if any(e.get('query') for e in index) else None
    with open(osp.join(out_dir, 'index.json'), 'w') as f:
        json.dump(dict(config=args.config, checkpoint=args.checkpoint, image=args.image,
                       query=query, image_size=list(image.shape[:2][::-1]),
                       pictures=index, not_drawn=notes), f, indent=1)

    at = f' (query pixel x={query[0]:g}, y={query[1]:g})' if query else ''
    print(f'{len(index)} pictures in {out_dir}{at}:')
    shows = OrderedDict()
    for e in index:
        mods = e['modules']
        where = mods[0] if len(mods) == 1 else f'{mods[0]} ... {mods[-1]} ({len(mods)})'
        what = 'heat maps' if e['kind'] == 'heatmap' else 'channel weights'
        flat = (f"; {len(e['near_constant'])} of {e['panels']} near-constant (range under 1e-3 "
                f"of the mean), not stretched" if e.get('near_constant') else '')
        print(f"  {e['file']}: {what} of {e['cls']} at {where}{flat}")
        shows[e['cls']] = e['shows']
    for cls_name, text in shows.items():
        print(f'{cls_name}: {text}')
    for n in notes:
        mods = n['modules']
        where = ', '.join(mods[:3]) + (f' and {len(mods) - 3} more' if len(mods) > 3 else '')
        print(f"cannot draw {n['cls']} ({where}): {n['reason']}")
    if not index:
        print(f'error: {TOOL}: none of the attention modules of {args.config!r} could be drawn',
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
