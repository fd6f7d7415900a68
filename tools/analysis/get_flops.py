"""Parameters and FLOPs of an mmdet or mmseg config, and the share of its mmattn modules.

    python tools/analysis/get_flops.py configs/faster_rcnn_se_r50_coco.py --shape 800 1333
    python tools/analysis/get_flops.py configs/toy/faster_rcnn_se_r50_toy-coco.py --num-images 4
    python tools/analysis/get_flops.py configs/danet_r50-d8_cityscapes-512x1024_40k.py \
        --shape 512 1024 --show-table

As mmdet's and mmseg's ``tools/analysis_tools/get_flops.py``: the config's model (eval mode,
SyncBN as BN, mmseg's training-only auxiliary head dropped) is traced by
``mmengine.analysis`` on one image at a time, after the config's data preprocessor
(normalisation, padding to the size divisor), through its ``mode='tensor'`` forward
(detectors: backbone, neck, RPN proposals, RoI head; segmentors: backbone and decode head).
The image is random at ``--shape``, or, without it, the first ``--num-images`` images of the
config's test dataloader (FLOPs averaged, as mmdet's tool does).

FLOPs are mmengine's: one multiply-add counts one; element-wise operators and reductions are not
counted, and the tool lists them (whole model, and inside each attention module) rather than
leaving them unsaid. See mmattn/utils/complexity.py for the counting details (including a fix
to mmengine's count of broadcast ``matmul``).
"""
import argparse
import json
import sys

from mmengine.config import DictAction

import mmattn  # noqa: F401  (registry scope)
from mmattn.utils import DatasetNotFoundError, silence_pinned_warnings
from mmattn.utils.complexity import (ConfigError, analyze_config, build_model,
                                     dataloader_batches, load_config, parse_shape,
                                     random_batch)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Parameters and FLOPs of an mmdet or mmseg config (mmengine.analysis)')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--shape', type=int, nargs='+', metavar='SIZE',
        help='count on a random image of H W (or S for S x S) pixels; without it, on the '
        'first --num-images images of the config\'s test dataloader')
    parser.add_argument('--num-images', type=int, default=1,
                        help='images of the test dataloader to average over (default 1)')
    parser.add_argument('--show-table', action='store_true',
                        help='print mmengine\'s per-module table of parameters and FLOPs')
    parser.add_argument('--max-depth', type=int, default=3, help='depth of --show-table')
    parser.add_argument('--show-arch', action='store_true',
                        help='print the model with each module\'s parameters and FLOPs')
    parser.add_argument('--device', default='cpu',
                        help='where to trace the model (cpu, cuda, cuda:1, ...); counts do '
                        'not depend on it')
    parser.add_argument('--out', help='also write the result to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value')
    return parser.parse_args(argv)


def _fail(msg):
    print(f'get_flops.py: error: {msg}', file=sys.stderr)
    sys.exit(2)


def format_count(x: float, unit: str = '') -> str:
    """1234567 -> '1.23 M'."""
    for div, suffix in ((1e12, 'T'), (1e9, 'G'), (1e6, 'M'), (1e3, 'K')):
        if abs(x) >= div:
            return f'{x / div:.2f} {suffix}{unit}'
    return f'{x:.0f} {unit}'.rstrip()


def _ops(counter: dict) -> str:
    return ', '.join(f'{op} x{n}' for op, n in counter.items()) or 'none'


def count(args) -> dict:
    """The tool's work, returning what it prints (tests call this)."""
    cfg, scope = load_config(args.config, args.cfg_options)
    shape = parse_shape(args.shape)
    if args.num_images < 1:
        raise ConfigError(f'--num-images must be at least 1, got {args.num_images}')
    model = build_model(cfg, scope, args.device)
    if shape is not None:
        batches = [random_batch(scope, shape)]
        source = f'a random {shape[0]}x{shape[1]} image'
    else:
        try:
            batches = list(dataloader_batches(cfg, scope, args.num_images))
        except DatasetNotFoundError as e:
            raise ConfigError(f'{e}\nOr pass --shape H W to count on a random image.')
        source = f'{len(batches)} image(s) of the test dataloader'
    results = [
        analyze_config(cfg, batch, scope, model, show_table=args.show_table and i == 0,
                       show_arch=args.show_arch and i == 0, max_depth=args.max_depth)
        for i, batch in enumerate(batches)
    ]
    n = len(results)
    first = results[0]
    attention = {}
    for name, entry in first.attention.items():
        attention[name] = dict(entry, flops=sum(r.attention[name]['flops'] for r in results) / n)
    return dict(
        config=args.config, scope=scope, model=cfg.model.type, source=source,
        input_shapes=sorted({tuple(r.input_shape) for r in results}),
        flops=sum(r.flops for r in results) / n, params=first.params, attention=attention,
        uncounted=first.uncounted, uncalled=first.uncalled, table=first.table)


def report(result: dict) -> str:
    lines = ['=' * 30,
             f'config: {result["config"]} ({result["scope"]}, {result["model"]})',
             f'input: {result["source"]}; model input after the data preprocessor: '
             + ', '.join(str(s) for s in result['input_shapes']),
             f'FLOPs: {format_count(result["flops"])} (multiply-adds)',
             f'params: {format_count(result["params"])}']
    if result['attention']:
        lines.append('mmattn modules (included in the totals above):')
        for name, e in result['attention'].items():
            lines.append(
                f'  {name} x{len(e["instances"])}: params {format_count(e["params"])} '
                f'({100 * e["params"] / result["params"]:.2f}%), FLOPs {format_count(e["flops"])}'
                f' ({100 * e["flops"] / result["flops"]:.3f}%); not counted in them: '
                f'{_ops(e["uncounted"])}')
            if any(op.startswith('prim::PythonOp') for op in e['uncounted']):
                lines.append(f'  WARNING: {name} ran an autograd Function while traced: its '
                             'work is missing from the FLOPs')
    if result['uncalled']:
        lines.append('WARNING: attention modules never called by the forward pass: '
                     + ', '.join(result['uncalled']))
    lines.append(f'not counted anywhere (element-wise ops, reductions, custom ops): '
                 f'{_ops(result["uncounted"])}')
    lines.append('=' * 30)
    if result['table']:
        lines.append(result['table'])
    return '\n'.join(lines)


def main(argv=None):
    silence_pinned_warnings()  # the pinned stack's deprecation notices (mmattn/utils/noise.py)
    args = parse_args(argv)
    try:
        result = count(args)
    except ConfigError as e:
        _fail(str(e))
    print(report(result))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump({k: v for k, v in result.items() if k != 'table'}, f, indent=1)
    return result


if __name__ == '__main__':
    main()
