"""What ``import mmattn`` changes beyond registering modules: torch's safe-load allow-list for
mmengine's checkpoints (mmattn/utils/checkpoint.py), and nothing else; in particular no warning
filter. Each case runs in a fresh interpreter, as a user's run imports mmattn.

torch, mmengine, mmdet ... change warning filters and the allow-list themselves when imported,
so each case first imports everything that ``import mmattn`` imports, then compares the state
before and after mmattn's own code runs."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.test_tools.toy_run import ROOT

PREIMPORT = """
import importlib, json, sys
with open(sys.argv[1]) as f:
    names = json.load(f)
for name in names:
    if name not in sys.modules:
        importlib.import_module(name)
"""


def run_py(code, *args):
    proc = subprocess.run([sys.executable, '-c', textwrap.dedent(code), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope='module')
def imported_by_mmattn(tmp_path_factory):
    """A file listing the modules, other than mmattn's, that ``import mmattn`` imports, in
    order (too many for a command line)."""
    names = run_py("""
        import json, sys
        before = set(sys.modules)
        import mmattn
        print(json.dumps([m for m in sys.modules
                          if m not in before and m.split('.')[0] != 'mmattn']))
    """)
    assert 'torch' in names and 'mmengine' in names
    path = tmp_path_factory.mktemp('imports') / 'modules.json'
    path.write_text(json.dumps(names))
    return str(path)


def test_import_leaves_warning_filters_as_they_were(imported_by_mmattn):
    result = run_py(PREIMPORT + """
import warnings
before = list(warnings.filters)
import mmattn
print(json.dumps(dict(same=warnings.filters == before,
                      added=[str(f) for f in warnings.filters if f not in before])))
""", imported_by_mmattn)
    assert result['same'], result['added']


def test_import_adds_exactly_the_documented_allow_list(imported_by_mmattn):
    result = run_py(PREIMPORT + """
import torch
before = list(torch.serialization.get_safe_globals())
import mmattn
from mmattn.utils.checkpoint import _mmengine_checkpoint_globals
after = list(torch.serialization.get_safe_globals())


def name(g):
    return g[1] if isinstance(g, tuple) else f'{g.__module__}.{g.__qualname__}'


print(json.dumps(dict(removed=[name(g) for g in before if g not in after],
                      added=[name(g) for g in after if g not in before],
                      documented=[name(g) for g in _mmengine_checkpoint_globals()])))
""", imported_by_mmattn)
    assert result['removed'] == []
    added = set(result['added'])
    assert len(added) == len(result['added']) and added == set(result['documented'])
    # mmengine's message-hub buffers, numpy arrays and scalars, and the one mapped getattr
    named = {'mmengine.logging.history_buffer.HistoryBuffer', 'numpy.ndarray', 'numpy.dtype',
             'builtins.getattr'}
    assert named | {'numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct',
                    'numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar'} <= added
    others = added - named
    assert all(n.startswith('numpy.') and (n.endswith('DType') or '.multiarray.' in n)
               for n in others), sorted(others)
