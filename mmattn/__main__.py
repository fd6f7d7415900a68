"""``python -m mmattn list``: every registered class with its family, arguments and cost.

Attention modules come with what they add to an ImageNet ResNet-50 at 224x224 at their
authors' placement (their class's ``placement``). Those figures are counted once, by
``python -m mmattn list --count --write``, into ``mmattn/models/resnet50_costs.py`` (a test
counts again and compares), so that the listing takes no counting; ``--count`` counts them
anew for the code as it is (about a second per module).
"""
import argparse
import json
import sys
import textwrap

# the listing is laid out for this many columns (a common terminal's width); only a URL longer
# than that is not broken
WIDTH = 100
INDENT = '    '


def _fmt(x: float) -> str:
    for div, suffix in ((1e9, ' G'), (1e6, ' M'), (1e3, ' K')):
        if abs(x) >= div:
            return f'{x / div:.2f}{suffix}'
    return f'{x:.0f}'


def cost_text(row: dict) -> str:
    """``+2.53 M params (9.90%), +2.51 M FLOPs (0.06%)`` of a module's ``resnet50`` figures."""
    c = row['resnet50']
    return (f'+{_fmt(c["params"])} params ({c["params_percent"]:.2f}%), '
            f'+{_fmt(c["flops"])} FLOPs ({c["flops_percent"]:.2f}%)')


def _field(label: str, text: str, width: int) -> list:
    """``label: text`` wrapped at spaces, continued under the text."""
    head = f'{INDENT}{label:<7}'
    return textwrap.wrap(text, width, initial_indent=head, subsequent_indent=' ' * len(head),
                         break_on_hyphens=False, break_long_words=False) or [head.rstrip()]


def format_listing(rows: list, costs: dict, width: int = WIDTH) -> list:
    """Lines of the listing: a header, then one block per class, family by family."""
    plain = costs['plain']
    h, w = costs['shape']
    header = 'Configs write the type as shown (type=\'mmattn.SE\').'
    if any('paper' in row for row in rows):
        header += (
            f' "in ResNet-50": what an attention module adds to an ImageNet ResNet-50 '
            f'({_fmt(plain["params"])} parameters, {_fmt(plain["flops"])} FLOPs at {h}x{w}; a '
            f'FLOP is a multiply-add, mmengine\'s count) where its authors place it ("where"; '
            f'"xN": its number of instances).')
    lines = textwrap.wrap(header, width)
    family = None
    for row in rows:
        if row['family'] != family:
            family = row['family']
            count = sum(r['family'] == family for r in rows)
            title = (f'{family} attention' if 'paper' in row else f'{family}s')
            lines += ['', f'== {title} ({count}) ==']
        lines.append('')
        attention = 'paper' in row
        if attention and row['resnet50'] is not None:
            lines.append(f'{row["type"]}  {cost_text(row)} in ResNet-50')
        else:
            lines.append(row['type'])
        if attention:
            where = row['where']
            if row['placement'] is None:
                where = f'not placed in a ResNet-50: {where}'
            elif row['resnet50'] is None:
                where += ' (not counted yet: `python -m mmattn list --count` counts it)'
            else:
                where += f' (x{row["resnet50"]["instances"]})'
            lines += _field('where:', where, width)
        else:
            lines += _field('what:', row['summary'], width)
        lines += _field('args:', row['signature'], width)
        if attention:
            lines += _field('paper:', row['paper'] or '-', width)
            lines += _field('code:', row['code'] or 'none released', width)
    return [line.rstrip() for line in lines]


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m mmattn',
                                     description='mmattn command line')
    sub = parser.add_subparsers(dest='command', required=True)
    ls = sub.add_parser(
        'list', help='list the registered classes: attention modules, backbones, necks, heads',
        description='Every class registered in the mmattn scope, with its family, its '
        'arguments and their defaults; attention modules with their paper, where their '
        'authors place them in a ResNet-50 and what they add to it.')
    ls.add_argument('--family', help='only this family (channel, spatial, context, backbone, '
                    'neck, head)')
    ls.add_argument('--json', action='store_true', help='print JSON instead of text')
    ls.add_argument('--count', action='store_true',
                    help='count the ResNet-50 figures now, for the code as it is (about a '
                    'second per module), instead of reading mmattn/models/resnet50_costs.py')
    ls.add_argument('--write', action='store_true',
                    help='with --count: write the figures of every module to '
                    'mmattn/models/resnet50_costs.py')
    args = parser.parse_args(argv)

    from mmattn.models import factory
    classes = factory.registered_classes()
    families = [f for f in factory.FAMILIES
                if any(factory.family_of(c) == f for c in classes.values())]
    if args.family is not None and args.family not in families:
        ls.error(f'unknown family {args.family!r}; the families are: {", ".join(families)}')
    if args.write and not (args.count and args.family is None):
        ls.error('--write needs --count and every family (no --family)')
    names = [n for n, c in classes.items()
             if args.family is None or factory.family_of(c) == args.family]
    if args.count:
        costs = factory.count_resnet50_costs(
            [n for n in names if n in factory.attention_classes()])
        if args.write:
            factory.write_resnet50_costs(costs)
            print(f'written to {factory.COSTS_FILE}', file=sys.stderr)
    else:
        costs = factory.stored_resnet50_costs()
    rows = [r for r in factory.list_registered(costs) if r['name'] in names]
    if args.json:
        print(json.dumps(dict(resnet50=dict(costs['plain'], shape=list(costs['shape'])),
                              classes=rows), indent=1))
        return 0
    print('\n'.join(format_listing(rows, costs)))
    counts = {f: sum(r['family'] == f for r in rows) for f in families}
    print(f'\n{len(rows)} {"class" if len(rows) == 1 else "classes"} ('
          + ', '.join(f'{n} {f}' for f, n in counts.items() if n) + ')')
    return 0


if __name__ == '__main__':
    sys.exit(main())
