"""Write the backbone of a trained detector or segmentor as a checkpoint of its own, optionally
without the weights of some attention module type.

    python tools/model_converters/extract_backbone.py SRC DST [--prefix backbone.]
        [--drop-attention SE [CBAM ...]]

``DST`` holds ``state_dict`` only, keyed as the backbone's own (``layer1.0.conv1.weight``), so
``backbone.init_cfg=dict(type='Pretrained', checkpoint=DST)`` loads it. ``--drop-attention
TYPE`` leaves out every tensor of the modules of that mmattn type (found by their plugin name:
the type's abbreviation, ``se``, ``cbam``, ..., and with a numeric postfix, ``se_2``, ``se_3``):
those modules then start from their own initialisation, the rest of the backbone from SRC.
Refuses a SRC without the prefix, and a type none of whose modules are in SRC; a file that
cannot be read, and a DST that is SRC or a directory, in one line. DST is written to a temporary
file beside it and renamed when complete.
"""
import argparse
import os.path as osp
import re
import sys
from collections import OrderedDict

# tools/ on the path, so that model_converters imports as a package from any directory
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from model_converters.files import (FileProblem, check_destination,  # noqa: E402
                                    load_checkpoint, write_atomically)


def _abbr(type_name):
    import mmattn  # noqa: F401  (registers the modules)
    from mmattn.registry import MODELS
    name = type_name.split('.', 1)[1] if type_name.startswith('mmattn.') else type_name
    return MODELS.get(name)._abbr_


def extract(state, prefix='backbone.', drop=()):
    """(kept state dict without ``prefix``, {type: number of tensors dropped})."""
    patterns = {t: re.compile(rf'(^|\.){re.escape(_abbr(t))}(_\d+)?\.') for t in drop}
    kept, dropped = OrderedDict(), {t: 0 for t in drop}
    for key, value in state.items():
        if not key.startswith(prefix):
            continue
        key = key[len(prefix):]
        hit = [t for t, p in patterns.items() if p.search(key)]
        if hit:
            dropped[hit[0]] += 1
            continue
        kept[key] = value
    return kept, dropped


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='a checkpoint of mmengine (state_dict under "state_dict")')
    parser.add_argument('dst', help='where to write the backbone checkpoint')
    parser.add_argument('--prefix', default='backbone.',
                        help='key prefix of the backbone in SRC (default: backbone.)')
    parser.add_argument('--drop-attention', nargs='+', default=[], metavar='TYPE',
                        help='mmattn module types whose weights to leave out (e.g. SE)')
    args = parser.parse_args(argv)

    try:
        # the destination never replaces the source, nor is a directory
        check_destination(args.src, args.dst, force=True)
        ckpt = load_checkpoint(args.src)
    except FileProblem as err:
        sys.exit(f'error: {err}')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        sys.exit(f'error: {args.src}: holds a {type(state or ckpt).__name__}, not a state dict')
    kept, dropped = extract(state, args.prefix, args.drop_attention)
    if not kept:
        sys.exit(f'error: no key of {args.src} starts with {args.prefix!r} '
                 f'(first keys: {list(state)[:3]})')
    empty = [t for t, n in dropped.items() if not n]
    if empty:
        sys.exit(f'error: {args.src} holds no {", ".join(empty)} weights under '
                 f'{args.prefix!r} (module name {", ".join(_abbr(t) for t in empty)})')
    try:
        write_atomically(dict(state_dict=kept), args.dst)
    except FileProblem as err:
        sys.exit(f'error: {err}')
    for t, n in dropped.items():
        print(f'dropped {n} tensors of {t} modules')
    print(f'wrote {len(kept)} tensors of {args.prefix.rstrip(".")} to {args.dst}')


if __name__ == '__main__':
    main()
