"""The documentation builds, with Sphinx's warnings as errors.

``sphinx-build -W`` over ``docs/en`` fails on a link to a page or section that does not exist,
a cross-reference to a class or function that does not, a docstring Sphinx cannot parse, and
an API entry whose object no longer imports. The API page documents every registered module,
and the README's links into the repository lead to files that exist.
"""
import importlib.util
import os
import os.path as osp
import re
import subprocess
import sys
import zlib

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DOCS = osp.join(ROOT, 'docs', 'en')
README = osp.join(ROOT, 'README.md')
README_MAX_LINES = 200


@pytest.fixture(scope='module')
def built_docs(tmp_path_factory):
    """Build the HTML documentation afresh into a temporary directory; return its path."""
    missing = [m for m in ('sphinx', 'myst_parser', 'furo') if importlib.util.find_spec(m) is None]
    assert not missing, (f'the documentation build needs {", ".join(missing)}: '
                         f'pip install -e ".[tests]"')
    out = tmp_path_factory.mktemp('docs')
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (ROOT, env.get('PYTHONPATH')) if p)
    cmd = [sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-E', '-q', '-b', 'html',
           '-d', str(out / 'doctrees'), DOCS, str(out / 'html')]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (
        f'sphinx-build -W failed (exit {proc.returncode}); its warnings:\n'
        f'{proc.stderr[-10000:]}')
    return out / 'html'


def read_inventory(path):
    """Object names and roles of a Sphinx ``objects.inv`` (format version 2)."""
    with open(path, 'rb') as f:
        for _ in range(4):  # the format, project, version and compression lines
            f.readline()
        body = zlib.decompress(f.read()).decode('utf-8')
    entries = {}
    for line in body.splitlines():
        match = re.match(r'(.+?)\s+(\S+:\S+)\s+-?\d+\s', line)
        if match:
            entries[match.group(1)] = match.group(2)
    return entries


def test_docs_build(built_docs):
    for page in ('index', 'get_started', 'api', 'model_zoo', 'benchmarks',
                 'user_guides/detection', 'user_guides/segmentation', 'user_guides/pretrained',
                 'user_guides/attention_maps', 'user_guides/analysis_tools',
                 'user_guides/distributed', 'advanced_guides/adding_a_module',
                 'advanced_guides/lean_attention', 'advanced_guides/fast_paths'):
        assert (built_docs / f'{page}.html').is_file(), f'docs/en/{page} was not built'


def test_api_documents_every_registered_class(built_docs):
    import mmattn  # noqa: F401  (registers everything)
    from mmattn.registry import HOOKS, MODELS
    documented = {name.rpartition('.')[2] for name, role in
                  read_inventory(built_docs / 'objects.inv').items() if role == 'py:class'}
    # the library's own classes, not those a test registers for itself
    registered = {name for name, cls in list(MODELS.module_dict.items())
                  + list(HOOKS.module_dict.items())
                  if isinstance(cls, type) and cls.__module__.startswith('mmattn.')}
    missing = sorted(registered - documented)
    assert not missing, (f'registered but not in the API reference (docs/en/api.rst): '
                         f'{missing}; export them from their package\'s __all__')


def test_readme_is_short_and_its_links_exist():
    with open(README) as f:
        text = f.read()
    lines = text.splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f'README.md has {len(lines)} lines, more than {README_MAX_LINES}: move the details '
        f'into docs/en/')
    assert '<!-- module-table:start -->' in text and '<!-- module-table:end -->' in text
    targets = re.findall(r'\]\(([^)\s]+)\)', text)
    local = [t.split('#')[0] for t in targets if not re.match(r'[a-z]+://', t)]
    assert local, 'README.md links to no page of the documentation'
    broken = [t for t in local if t and not osp.exists(osp.join(ROOT, t))]
    assert not broken, f'README.md links to files that do not exist: {broken}'
