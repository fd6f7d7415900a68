"""Source, configs and tests speak of the code as it is: no issue or pull-request numbers,
commit hashes, GPU or CPU model names, timings or the story of the work in ``mmattn/``,
``tools/``, ``configs/`` or ``tests/``. Figures belong in ``docs/en/benchmarks.md``, with the
command, device, versions and date that produced them.

Hex digests that are data stay allowed: addresses (a checkpoint URL names its hash) and file
names that carry a hash (``se_resnet50-ce0d4300.pth``) are removed from a line before it is
searched.
"""
import os
import os.path as osp
import re

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SEARCHED = ('mmattn', 'tools', 'configs', 'tests')
THIS_FILE = osp.relpath(osp.abspath(__file__), ROOT)
TEXT_SUFFIXES = ('.py', '.sh', '.md', '.txt', '.yml', '.yaml', '.json', '.cfg', '.toml', '.ini')

# what a line is stripped of before the search: data that may hold a hex digest
ALLOWED = [
    re.compile(r'\b[a-z][\w+.-]*://\S+', re.I),  # addresses (http, https, s3, torchvision ...)
    re.compile(r'[\w.]*[-_][0-9a-f]{6,64}\.(?:pth|pt|ckpt|bin|safetensors|zip|tar|gz|npz)\b',
               re.I),  # checkpoint files named after their hash
]

# (what it finds, pattern)
RULES = [
    ('an issue number', re.compile(r'\bissues?\s*#?\s*\d+', re.I)),
    ('an issue number', re.compile(r'(?<![\w&#$/{\'"\[])#\d{1,5}\b')),
    ('a pull-request number', re.compile(r'\b(?:PR|pull request)\s*#?\d+', re.I)),
    # 7 to 40 hex digits with at least one digit and one letter: the digits alone are numbers,
    # the letters alone words ("facade")
    ('a commit hash', re.compile(r'\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b')),
    ('a commit', re.compile(r'\b(?:at|on|since|before|after) commit\b', re.I)),
    ('a GPU or CPU model', re.compile(
        r'\b(?:[AHLV]100|H200|A10G|GH200|B200|RTX\s?\d{4}|Xeon|EPYC|Ryzen|Threadripper)\b',
        re.I)),
    ('the story of the work', re.compile(
        r'\b(?:this|that|the previous|an earlier) session\b|\b(?:was|were|is) lent\b'
        r'|\bfirst hour\b|\boutside check\b', re.I)),
    ('a timing', re.compile(r'\b\d+(?:\.\d+)?\s?(?:ms|µs|us)\b(?![-\w])')),
    ('a timing', re.compile(r'\b\d+(?:\.\d+)?x (?:faster|slower)\b', re.I)),
]


def find_history(line):
    """``[(what, matched text)]`` for one line, one finding per stretch of text."""
    for allowed in ALLOWED:
        line = allowed.sub(' ', line)
    found, taken = [], []
    for what, rule in RULES:
        for m in rule.finditer(line):
            if not any(m.start() < end and start < m.end() for start, end in taken):
                taken.append(m.span())
                found.append((what, m.group(0)))
    return found


def searched_files():
    for top in SEARCHED:
        for dirpath, dirnames, filenames in os.walk(osp.join(ROOT, top)):
            dirnames[:] = [d for d in dirnames if d != '__pycache__' and not d.startswith('.')]
            for name in sorted(filenames):
                path = osp.join(dirpath, name)
                rel = osp.relpath(path, ROOT)
                if rel != THIS_FILE and name.endswith(TEXT_SUFFIXES):
                    yield rel


@pytest.mark.parametrize('text', [
    'issue #13', 'see issue 14, item 4', 'issues 13 and 15', 'as in #13.', '(#7)',
    'PR #21', 'measured at commit 624c31f', 'on commit 3754b3b', 'rerun at 9f3e2a1c',
    'an NVIDIA H200', 'on an h100', 'Intel Xeon @ 2.6 GHz', 'AMD EPYC', 'RTX 4090',
    'no GPU in this session', 'the machine that was lent', 'issue 15, first hour',
    "issue #15's outside check", 'took 87 ms', '11.5ms against 28.3', '2.2x faster',
])
def test_history_is_found(text):
    assert find_history(text), text


@pytest.mark.parametrize('text', [
    'http://data.lip6.fr/cadene/pretrainedmodels/se_resnet50-ce0d4300.pth',
    'https://download.pytorch.org/models/resnet50-0676ba61.pth',
    '# (se_resnet50-ce0d4300.pth, SE weights included)',
    'seresnext101_32x8d_ah-e6bc4c0a.pth', "colour = '#1f77b4'", '000000000001.png',
    '13952522076/SPANet', 'a facade, decaded', 'x = y  # 1 row per sample', '${#ARGS[@]}',
    '0x1f2e3d4c', 'sha256 = "' + 'ab12' * 16 + '"', 'times in ms (min / median)',
    'f"{t * 1e3:.3g} ms"', 'the session layer', '--budget 0.2', 'mmcv 2.1.0, mmdet 3.3.0',
    'the batch of #samples', 'torch.float16', 'A (N, C, H, W) tensor', 'H100x',
])
def test_data_and_ordinary_text_pass(text):
    assert not find_history(text), find_history(text)


def test_no_history_in_source():
    found = []
    for rel in searched_files():
        with open(osp.join(ROOT, rel), encoding='utf-8', errors='replace') as f:
            for number, line in enumerate(f, 1):
                for what, text in find_history(line):
                    found.append(f'{rel}:{number}: {what}: {text!r}')
    assert not found, ('the code, configs and tests should say what the code does, not its '
                       'history; figures go to docs/en/benchmarks.md:\n' + '\n'.join(found))
