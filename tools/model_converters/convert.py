"""Convert a released ImageNet checkpoint into an mmattn backbone's state dict.

    python tools/model_converters/convert.py --list
    python tools/model_converters/convert.py timm-se seresnet50_ra_224-8efdb4bb.pth \\
        checkpoints/seresnet50_timm_attnresnet.pth [--depth 50]

One format per source layout (``--list`` prints them all with the backbone config each one's
output loads into). The conversion prints what it mapped (tensors per kind, what it dropped
and filled) and the backbone config ready to paste into a detection or segmentation config,
with ``init_cfg=dict(type='Pretrained', checkpoint=DST)``; it refuses, naming them, a source
tensor it cannot map, a missing one, and a backbone tensor it would leave unfilled. The
output is ``{'state_dict': <backbone keys>, 'meta': ...}``, the file mmengine's ``Pretrained``
init loads with no ``prefix``.
"""
import argparse
import os
import os.path as osp
import pprint
import sys
from typing import Optional, Sequence

# tools/ on the path, so that model_converters imports as a package from any directory
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(1, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from model_converters.common import (ConversionError, backbone_state,  # noqa: E402
                                     check_against, load_source, save_converted)
from model_converters.formats import FORMATS  # noqa: E402


def config_text(cfg: dict, checkpoint: Optional[str] = None) -> str:
    cfg = dict(cfg)
    if checkpoint is not None:
        cfg['init_cfg'] = dict(type='Pretrained', checkpoint=checkpoint)
    return 'backbone=' + pprint.pformat(cfg, indent=4, width=96, sort_dicts=False)


def list_formats() -> None:
    for fmt in FORMATS.values():
        print(f'{fmt.name}: {fmt.description}')
        print(f'    weights: {fmt.published}')
        print(f'    depths: {", ".join(map(str, fmt.depths))}')
        try:
            cfg = fmt.backbone(fmt.depths[0] if 50 not in fmt.depths else 50)
        except ConversionError:  # a layout no backbone of ours expresses (its reason below)
            cfg = None
        if cfg is not None:
            print('    loads into: ' + config_text(cfg).replace('\n', '\n    '))
        for fig in fmt.figures:
            print(f'    published: {fig}')
        for why in fmt.unsupported:
            print(f'    not convertible: {why}')


def convert(name: str, src: str, dst: str, depth: Optional[int] = None,
            overrides: Optional[dict] = None) -> dict:
    """Convert ``src`` (format ``name``) into ``dst``; returns the backbone config.

    ``overrides`` update the format's backbone config (tests: narrow ``base_channels``).
    """
    if name not in FORMATS:
        raise ConversionError(f'unknown format {name!r}; formats: {", ".join(FORMATS)}')
    fmt = FORMATS[name]
    src_state = load_source(src)
    found = fmt.infer_depth(src_state)
    if depth is not None and depth != found:
        raise ConversionError(f'{name}: --depth {depth} given, but the checkpoint\'s blocks '
                              f'per stage are those of depth {found}')
    depth = found
    dst_state, report = fmt.convert(src_state, depth)
    cfg = fmt.backbone(depth)
    cfg.update(overrides or {})
    check_against(dst_state, backbone_state(cfg), name)
    meta = dict(converter=f'tools/model_converters/convert.py {name}', source=osp.basename(src),
                backbone=repr(cfg))
    if osp.dirname(dst):
        os.makedirs(osp.dirname(dst), exist_ok=True)
    save_converted(dst_state, dst, meta)
    print(f'{name}: {src} -> {dst} (depth {depth}, {len(dst_state)} tensors)')
    print('\n'.join(report.lines()))
    print('Backbone config (every tensor of it is in the file):')
    print(config_text(cfg, dst))
    return cfg


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a released ImageNet checkpoint into an mmattn backbone.')
    parser.add_argument('format', nargs='?', help='source format (see --list)')
    parser.add_argument('src', nargs='?', help='the released checkpoint (.pth, .pth.tar)')
    parser.add_argument('dst', nargs='?', help='where to write the converted checkpoint')
    parser.add_argument('--list', action='store_true', help='list the formats and exit')
    parser.add_argument('--depth', type=int, default=None,
                        help='the network depth (default: counted from the checkpoint; '
                        'refused if the checkpoint has another)')
    args = parser.parse_args(argv)
    if not args.list and not (args.format and args.src and args.dst):
        parser.error('give FORMAT SRC DST, or --list')
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.list:
        list_formats()
        return 0
    try:
        convert(args.format, args.src, args.dst, args.depth)
    except ConversionError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
