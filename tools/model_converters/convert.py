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

Every refusal is one line on stderr and exit status 1, before anything is written: a file that
cannot be read (``files.py``: missing, empty, truncated, text, a pickled object, ...), a DST that
is SRC or a directory, an existing DST without ``--force``, a detector checkpoint, a network
that has the format's tensors but computes something else where a name tells
(``identify.py``), and a checkpoint in another format's layout (naming that format). DST is
written to a temporary file beside it and renamed when complete.
"""
import argparse
import os.path as osp
import pprint
import sys
from typing import Optional, Sequence

# tools/ on the path, so that model_converters imports as a package from any directory
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(1, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from model_converters.common import (ConversionError, backbone_state,  # noqa: E402
                                     check_against, save_converted)
from model_converters.files import (FileProblem, check_destination,  # noqa: E402
                                    check_readable, read_source)
from model_converters.formats import FORMATS  # noqa: E402
from model_converters.identify import check_kind, check_network  # noqa: E402


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
        cfg = fmt.backbone(fmt.depths[0] if 50 not in fmt.depths else 50)
        print('    loads into: ' + config_text(cfg).replace('\n', '\n    '))
        for line in fmt.exactness.lines():
            print(f'    exactness: {line}')
        for fig in fmt.figures:
            print(f'    published: {fig}')
        for name, why in fmt.lookalikes:
            print(f'    same tensors, another network: {name}, {why}. Refused where a name says '
                  f'so (the file\'s, its Hugging Face hub folder\'s, the architecture in a '
                  f'config.json beside it, a timm training checkpoint\'s arch); nothing in the '
                  f'tensors tells them apart, so for a file without such a name check yourself '
                  f'that it is not {name}')
        for why in fmt.unsupported:
            print(f'    not convertible: {why}')


def _convert_state(fmt, state, depth: Optional[int], overrides: Optional[dict]):
    """(converted state, report, backbone config, depth) of ``state`` in format ``fmt``."""
    found = fmt.infer_depth(state)
    if depth is not None and depth != found:
        raise ConversionError(f'{fmt.name}: --depth {depth} given, but the checkpoint\'s '
                              f'blocks per stage are those of depth {found}')
    dst_state, report = fmt.convert(state, found)
    cfg = fmt.backbone(found)
    cfg.update(overrides or {})
    check_against(dst_state, backbone_state(cfg), fmt.name)
    return dst_state, report, cfg, found


def formats_that_convert(state, exclude: str, overrides: Optional[dict] = None) -> list:
    """The other formats whose layout ``state`` has (a look-alike given to the wrong format:
    BAM weights to ``cbam``): those that convert it exactly first, then those that map every
    tensor by name (their backbone has other widths, e.g. a narrower network)."""
    exact, named = [], []
    for other in FORMATS.values():
        if other.name == exclude:
            continue
        try:
            depth = other.infer_depth(state)
            dst_state, _ = other.convert(state, depth)
        except ConversionError:
            continue
        try:
            cfg = dict(other.backbone(depth), **(overrides or {}))
            check_against(dst_state, backbone_state(cfg), other.name)
        except ConversionError:
            named.append(other.name)
            continue
        exact.append(other.name)
    return exact + named


def convert(name: str, src: str, dst: str, depth: Optional[int] = None,
            overrides: Optional[dict] = None, force: bool = False) -> dict:
    """Convert ``src`` (format ``name``) into ``dst``; returns the backbone config.

    Refuses, before anything is written: an unknown format; a source that cannot be read; a
    destination that is the source, a directory, or exists (unless ``force``); a checkpoint of
    another kind or named as a network the format does not convert (``identify.py``); and
    anything the conversion cannot map exactly (naming the format that can, if one does).
    ``overrides`` update the format's backbone config (tests: narrow ``base_channels``).
    """
    if name not in FORMATS:
        raise ConversionError(f'unknown format {name!r}; formats: {", ".join(FORMATS)}')
    fmt = FORMATS[name]
    check_readable(src)
    check_destination(src, dst, force)
    source = read_source(src)
    check_kind(fmt, source)
    notes = check_network(fmt, source, FORMATS)
    try:
        dst_state, report, cfg, depth = _convert_state(fmt, source.state, depth, overrides)
    except FileProblem:
        raise
    except ConversionError as err:
        others = [] if 'use format' in str(err) else \
            formats_that_convert(source.state, name, overrides)
        if not others:
            raise
        raise ConversionError(
            f'{name}: {src} is in the layout of format {others[0]!r}'
            + (f' (or {", ".join(map(repr, others[1:]))})' if others[1:] else '')
            + f', not {name}\'s: python tools/model_converters/convert.py {others[0]} {src} '
            f'{dst} ({err})'
        ) from None
    report.notes.extend(notes)
    meta = dict(converter=f'tools/model_converters/convert.py {name}', source=osp.basename(src),
                backbone=repr(cfg))
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
    parser.add_argument('src', nargs='?', help='the released checkpoint (.pth, .pth.tar, .bin; '
                        '.safetensors with the safetensors package)')
    parser.add_argument('dst', nargs='?', help='where to write the converted checkpoint (a '
                        'file; never SRC)')
    parser.add_argument('--force', action='store_true',
                        help='replace DST if it exists (written to a temporary file first, '
                        'then renamed: DST is never left half-written)')
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
        convert(args.format, args.src, args.dst, args.depth, force=args.force)
    except ConversionError as err:
        # one line: every refusal names the file or the format and what is wrong
        print('error: ' + ' '.join(str(err).split()), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
