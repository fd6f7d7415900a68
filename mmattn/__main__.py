"""``python -m mmattn list``: every registered module with its family and paper."""
import argparse
import sys
import textwrap

# the table is laid out for this many columns (a common terminal's width, and narrower ones
# than the papers' titles would need on one line)
WIDTH = 100


def format_table(rows, width=WIDTH):
    """Lines of the module table, none longer than ``width`` (but for a URL longer than it):
    one row per module, the paper wrapped in its column and the authors' code below it."""
    table = [(f"mmattn.{r['name']}", r['family'], 'yes' if r['plugin'] else 'no')
             for r in rows]
    headers = ('type', 'family', 'plugin')
    widths = [max(len(h), *(len(t[i]) for t in table)) if table else len(h)
              for i, h in enumerate(headers)]
    indent = sum(widths) + 2 * len(widths)
    text_width = max(width - indent, 20)
    lines = ['  '.join(h.ljust(w) for h, w in zip(headers, widths)) + '  paper / authors\' code',
             '-' * min(width, indent + text_width)]
    for t, r in zip(table, rows):
        # broken at spaces only, so that the title reads whole with its lines joined
        paper = textwrap.wrap(r['paper'] or '-', text_width, break_on_hyphens=False) or ['-']
        lines.append('  '.join(c.ljust(w) for c, w in zip(t, widths)) + '  ' + paper[0])
        lines.extend(' ' * indent + part for part in paper[1:])
        # a URL is never broken: under the paper, or further left where it would not fit
        code = r['code'] or '-'
        lines.append(' ' * max(0, min(indent, width - len(code))) + code)
    return [line.rstrip() for line in lines]


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m mmattn',
                                     description='mmattn command line')
    sub = parser.add_subparsers(dest='command', required=True)
    ls = sub.add_parser('list', help='list the registered attention modules')
    ls.add_argument('--family', help='only this family (channel, spatial, context)')
    args = parser.parse_args(argv)

    import mmattn
    rows = mmattn.list_attention()
    families = sorted({r['family'] for r in rows})
    if args.family is not None and args.family not in families:
        ls.error(f'unknown family {args.family!r}; the families are: {", ".join(families)}')
    rows = [r for r in rows if args.family is None or r['family'] == args.family]
    print('\n'.join(format_table(rows)))
    print(f'\n{len(rows)} modules')
    return 0


if __name__ == '__main__':
    sys.exit(main())
