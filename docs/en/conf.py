"""Sphinx configuration of mmattn's documentation (Markdown pages through myst-parser).

Build: ``sphinx-build -W docs/en docs/_build/html`` (``tests/test_docs.py`` runs this with
``-W``, so a broken reference or a class that no longer imports fails the tests).
"""
import importlib
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
# the checkout's mmattn, also where an installed mmattn exists
sys.path.insert(0, ROOT)

import mmattn  # noqa: E402

project = 'mmattn'
copyright = 'mmattn contributors'
author = 'mmattn contributors'
version = release = mmattn.__version__

extensions = [
    'myst_parser',
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx.ext.viewcode',
]

source_suffix = {'.rst': 'restructuredtext', '.md': 'markdown'}
root_doc = 'index'
exclude_patterns = ['_build']

# Markdown: anchors for headings down to ###, so that pages link to each other's sections
# and a link to a section that does not exist is a warning.
myst_heading_anchors = 3
myst_enable_extensions = ['colon_fence']

# API reference: the docstrings as written (Google style, read by napoleon), members in the
# order of the source. Nothing is mocked: the documented code imports as users import it.
autodoc_member_order = 'bysource'
autodoc_default_options = {'members': True, 'show-inheritance': True}
autodoc_typehints = 'signature'
autodoc_inherit_docstrings = False  # not nn.Module's forward and extra_repr texts
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# argument types stay text: "norm_cfg / act_cfg:" entries document two arguments at once
napoleon_use_param = False
napoleon_use_rtype = False

# Every cross-reference must resolve (a renamed class breaks the build), except references
# into other projects' API, which this build does not link to.
nitpicky = True
nitpick_ignore_regex = [
    (r'py:.*', r'(torch|mmengine|mmcv|mmdet|mmseg|numpy|np|nn|typing|collections|contextlib)'
               r'\..*'),
    (r'py:.*', r'(Tensor|Module|BaseModule|BaseDecodeHead|BaseCascadeDecodeHead|FCNHead|Hook|'
               r'Runner|Registry|Config|ConfigDict|OrderedDict|build_from_cfg)'),
]

html_theme = 'furo'
html_title = f'mmattn {release}'
html_static_path = ['_static']


# -- references the Python domain cannot resolve by itself ---------------------------------
# Docstrings name classes as their readers know them: ``DANetPAM`` inside a head's docstring,
# ``mmattn.models.context.non_local.NonLocal`` for what the API page documents as
# ``mmattn.models.context.NonLocal``, or a helper that has no entry of its own. Such a reference
# resolves to the one documented object of that name in the same package tree, or, failing
# that, to plain text if it names an object that imports. A name that neither documents nor
# imports stays a warning, so that a renamed or deleted object fails the build.

def _ancestor_or_descendant(a: str, b: str) -> bool:
    return a == b or a.startswith(b + '.') or b.startswith(a + '.')


def _imports(path: str) -> bool:
    parts = path.split('.')
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module('.'.join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def _resolve_mmattn_reference(app, env, node, contnode):
    if node.get('refdomain') != 'py':
        return None
    target = node['reftarget'].lstrip('~.')
    module, _, name = target.rpartition('.')
    domain = env.get_domain('py')
    found = [full for full, entry in domain.objects.items()
             if not entry.aliased and full.rpartition('.')[2] == name
             and full.startswith('mmattn.')
             and (not module or _ancestor_or_descendant(full.rpartition('.')[0], module))]
    if len(found) == 1:
        from sphinx.util.nodes import make_refnode
        entry = domain.objects[found[0]]
        return make_refnode(app.builder, node['refdoc'], entry.docname, entry.node_id,
                            contnode, found[0])
    if found:
        return None  # ambiguous: Sphinx warns
    # a helper without an entry: its own path, or a name in the docstring's module
    where = re.search(r'docstring of ([\w.]+)', node.source or '')
    scopes = [node.get('py:module')] + ([where.group(1)] if where else [])
    candidates = [target] + [f'{scope}.{target}' for scope in scopes if scope]
    for scope in scopes[1:]:
        while '.' in scope:
            scope = scope.rpartition('.')[0]
            candidates.append(f'{scope}.{target}')
    if any(c.startswith('mmattn') and _imports(c) for c in candidates):
        return contnode
    return None


def setup(app):
    app.connect('missing-reference', _resolve_mmattn_reference)
