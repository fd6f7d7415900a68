"""tools/benchmarks/attention_paths.py runs every path on the CPU and names the rule's choice."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'tools', 'benchmarks'))

import attention_paths  # noqa: E402


def test_every_path_timed_and_rule_named(capsys):
    assert attention_paths.main(['--cases', 'pam:2x16x5x7', 'nonlocal:1x16x6x5',
                                 '--repeat', '1', '--warmup', '0']) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith('| pam')
            or line.startswith('| nonlocal')]
    assert len(rows) == 2 * 5
    # training on the CPU: blocks, whatever the widths
    assert [r.split('|')[2].strip() for r in rows[::5]] == ['rule (blocked)'] * 2
    assert all(float(r.split('|')[3]) > 0 for r in rows)


def test_large_matrices_skipped_on_the_cpu(capsys):
    attention_paths.main(['--cases', 'pam:1x16x64x64', '--paths', 'explicit',
                          '--max-quadratic-gib', '0.01', '--repeat', '1', '--warmup', '0'])
    assert 'skipped: 0.1 GiB matrix' in capsys.readouterr().out
