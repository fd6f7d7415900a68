"""``python -m mmattn list``: every registered module with its family and paper."""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m mmattn',
                                     description='mmattn command line')
    sub = parser.add_subparsers(dest='command', required=True)
    ls = sub.add_parser('list', help='list the registered attention modules')
    ls.add_argument('--family', help='only this family (channel, spatial, context)')
    sub.add_parser('paths', help='where each fast path runs: its rule, choices, picks on '
                   'cpu/cuda for float32/bfloat16, and the measurements behind it')
    args = parser.parse_args(argv)
    if args.command == 'paths':
        from mmattn.models.path_report import render
        print(render(width=100))
        return 0

    import mmattn
    rows = [r for r in mmattn.list_attention()
            if args.family is None or r['family'] == args.family]
    headers = ('type', 'family', 'plugin', 'paper', 'authors\' code')
    table = [(f"mmattn.{r['name']}", r['family'], 'yes' if r['plugin'] else 'no',
              r['paper'], r['code']) for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) if table else len(h)
              for i, h in enumerate(headers)]
    line = '  '.join(h.ljust(w) for h, w in zip(headers, widths))
    print(line)
    print('  '.join('-' * w for w in widths))
    for t in table:
        print('  '.join(c.ljust(w) for c, w in zip(t, widths)))
    print(f'\n{len(table)} modules')
    return 0


if __name__ == '__main__':
    sys.exit(main())
