"""The model zoo, generated from the registry, the module classes, the configs and the runs.

    python tools/analysis/model_zoo.py --update docs/en/model_zoo.md --readme README.md
    python tools/analysis/model_zoo.py                  # print the markdown instead

Nothing in it is written by hand: adding a module (its file, with the class attributes of
:class:`mmattn.models.BaseAttention`) or a config adds its rows. Two outputs:

- ``--update FILE`` (``docs/en/model_zoo.md``): the model zoo tables, between
  ``<!-- model-zoo:start -->`` and ``<!-- model-zoo:end -->``;
- ``--readme FILE`` (``README.md``): the module table, between
  ``<!-- module-table:start -->`` and ``<!-- module-table:end -->``: one row per module with
  its family, paper, where it plugs in (its class's ``placement``) and the parameters and
  FLOPs it adds to an ImageNet ResNet-50 at 224x224.

For every attention module registered in mmattn (``mmattn.models.factory.attention_classes``),
the model zoo gives its paper and authors' repository (the classes' ``paper``/``code``),
family, the configs that use it (every ``CONFIG_DIR/*.py`` whose built model contains the
module; nothing is listed by hand, and a module no config uses says "no config"), where each
config places it (read from the config's ``plugins`` / ``stage_plugins`` / neck / head), and:

- its parameter and FLOP overhead in Faster R-CNN R50-FPN at 800x1333 (``--shape``): the
  parameters and FLOPs of the module's instances, counted by mmengine through
  :func:`mmattn.utils.complexity.analyze_config`, the function ``get_flops.py`` uses, against
  the totals of the plain config (``--baseline``, mmdet's Faster R-CNN R50-FPN 1x);
- its overhead in an ImageNet ResNet-50 at 224x224 (``--classifier-shape``), placed as its
  class's ``placement`` says (``mmattn.models.backbones.classifier.AUTHORS_PLACEMENT``);
- published results, from ``--published`` (configs/model_zoo/published.yml: each number with
  its source, the paper's or OpenMMLab's model zoo);
- results measured here on the toy data: the metrics JSON that ``tools/test.py`` (mmengine's
  ``Runner.test``) writes to ``WORK_DIR/<timestamp>/<timestamp>.json``, next to the config it
  dumps in ``WORK_DIR``, for every work dir under ``--toy-work-dirs``. A run is matched to a
  config row when its model has the same attention modules at the same places (the toy
  configs inherit the full configs' placement); "not run" otherwise.

Counting a Faster R-CNN at 800x1333 takes 10-20 s on a CPU; counts are cached in
``--cache-dir`` under a hash of the model config, the input shape, torch/mmengine versions and
mmattn's model sources, so a re-run after adding a module counts only what changed.
Each file's markers are replaced with the new markdown (appended at the file's end, with the
markers, if it has none).
"""
import argparse
import copy
import glob
import hashlib
import json
import os
import os.path as osp
import re
import sys
import time
from collections import defaultdict

import torch

import mmattn  # noqa: F401  (registry scope)
from mmattn.models.factory import (FAMILIES, attention_classes, describe_backbone_placement,
                                   family_of, missing_declarations, placement_text)
from mmattn.models.factory import short_type as _short_type
from mmattn.utils.complexity import (Complexity, ConfigError, analyze_config, analyze_model,
                                     attention_modules, build_model, load_config, parse_shape,
                                     random_batch, source_fingerprint)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
START, END = '<!-- model-zoo:start -->', '<!-- model-zoo:end -->'
TABLE_MARKERS = ('<!-- module-table:start -->', '<!-- module-table:end -->')
ZOO_PAGE = 'docs/en/model_zoo.md'
BASELINE = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
# metrics tools/test.py prints, by scope: the one a table cell shows first
MAIN_METRICS = {'mmdet': [('coco/bbox_mAP', 'box mAP'), ('coco/bbox_mAP_50', 'mAP@50')],
                'mmseg': [('mIoU', 'mIoU'), ('cityscapes/average', 'class avg')]}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Generate the model zoo tables and the README\'s module table')
    parser.add_argument('--update', metavar='FILE',
                        help=f'write the model zoo tables between the model-zoo markers of '
                        f'FILE ({ZOO_PAGE})')
    parser.add_argument('--readme', metavar='FILE',
                        help='write the module table between the module-table markers of FILE '
                        '(README.md); needs the classifier counts')
    parser.add_argument('--config-dir', default=osp.join(ROOT, 'configs'),
                        help='configs to list (its *.py, not sub-folders)')
    parser.add_argument('--baseline', default=BASELINE,
                        help='the plain detector the overheads are relative to')
    parser.add_argument('--shape', type=int, nargs='+', default=[800, 1333],
                        help='detector input H W (default 800 1333)')
    parser.add_argument('--classifier-shape', type=int, nargs='+', default=[224, 224],
                        help='ResNet-50 classifier input H W (default 224 224)')
    parser.add_argument('--no-classifier', action='store_true',
                        help='leave out the ResNet-50 classifier table')
    parser.add_argument('--published', default=osp.join(ROOT, 'configs', 'model_zoo',
                                                         'published.yml'))
    parser.add_argument('--toy-work-dirs', nargs='*', default=[osp.join(ROOT, 'work_dirs')],
                        help='folders holding work dirs of toy test runs')
    parser.add_argument('--cache-dir', default=osp.join(ROOT, 'work_dirs', '.model_zoo_cache'))
    parser.add_argument('--no-cache', action='store_true', help='count everything again')
    parser.add_argument('--device', default='cpu', help='where to trace (counts do not change)')
    return parser.parse_args(argv)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# -- counting, cached ---------------------------------------------------------------------------
class Cache:
    """JSON records under ``root``, keyed by a hash of what determines them (the caller
    includes :func:`source_fingerprint` of the model it counts)."""

    def __init__(self, root, enabled=True):
        self.root, self.enabled = root, enabled

    @staticmethod
    def key(*parts) -> str:
        text = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def get(self, key):
        path = osp.join(self.root, key + '.json')
        if self.enabled and osp.isfile(path):
            with open(path) as f:
                return json.load(f)
        return None

    def put(self, key, record):
        if self.enabled:
            os.makedirs(self.root, exist_ok=True)
            with open(osp.join(self.root, key + '.json'), 'w') as f:
                json.dump(record, f)
        return record


def _instances(model):
    """{class name: [qualified names]} of the model's attention modules."""
    found = defaultdict(list)
    for name, module in attention_modules(model).items():
        found[type(module).__name__].append(name)
    return dict(found)


def config_record(path, cache, shape, device, count_flops):
    """What the zoo needs of one config: scope, model type, attention instances and, for a
    Faster R-CNN (``count_flops``), its complexity at ``shape``."""
    cfg, scope = load_config(path)
    is_detector = scope == 'mmdet' and cfg.model.get('type') == 'FasterRCNN'
    want_flops = count_flops and is_detector
    model = build_model(cfg, scope, device)  # a second or two; counting takes 10-40 s
    key = cache.key('config', cfg.model.to_dict(), scope, shape if want_flops else None,
                    source_fingerprint(model))
    record = cache.get(key)
    if record is not None:
        return cfg, record
    start = time.time()
    record = dict(scope=scope, model=cfg.model.get('type'), detector=is_detector,
                  instances=_instances(model), complexity=None)
    if want_flops:
        record['complexity'] = analyze_config(cfg, random_batch(scope, shape), scope,
                                              model).to_dict()
        log(f'  counted {path} in {time.time() - start:.0f} s')
    return cfg, cache.put(key, record)


def classifier_record(name, placement, cache, shape, device):
    """Complexity of the ResNet-50 classifier with ``placement`` (None: plain)."""
    from mmattn.models.backbones import resnet50_classifier
    model = resnet50_classifier(**(placement or {})).to(device).eval()
    key = cache.key('classifier', name, placement, shape, source_fingerprint(model))
    record = cache.get(key)
    if record is None:
        x = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(0)).to(device)
        record = cache.put(key, analyze_model(model, x).to_dict())
    return Complexity.from_dict(record)


# -- placement, from the config ---------------------------------------------------------------
def describe_placement(cfg, name, instances) -> str:
    """Where the config puts ``mmattn.<name>``, in words."""
    model = cfg.model
    parts = describe_backbone_placement(model.get('backbone') or {}, name)
    necks = model.get('neck')
    necks = necks if isinstance(necks, (list, tuple)) else [necks] if necks else []
    for i, neck in enumerate(necks):
        attn = neck.get('attention') if isinstance(neck.get('attention'), dict) else None
        if attn is None or _short_type(attn.get('type')) != name:
            continue
        after_fpn = any('FPN' in _short_type(n.get('type')) for n in necks[:i])
        levels = neck.get('levels')
        n_levels = len(neck.get('in_channels', []))
        sel = list(levels) if levels is not None else list(range(n_levels))
        names = [f'P{j + 2}' if after_fpn else f'C{j + 2}' for j in sel]
        on = f'{names[0]}-{names[-1]}' if len(names) > 1 else names[0]
        parts.append(f'neck ({_short_type(neck["type"])}), '
                     f'{"after" if after_fpn else "before"} the FPN, on {on}')
    if not parts:  # inside a component whose config does not name it (a head)
        owners = sorted({n.split('.')[0] for n in instances})
        for owner in owners:
            sub = model.get(owner)
            sub = sub[-1] if isinstance(sub, (list, tuple)) else sub
            parts.append(f'{owner.replace("_", " ")} ({_short_type(sub["type"])})'
                         if isinstance(sub, dict) else owner)
    return '; '.join(parts)


# -- published and toy results ----------------------------------------------------------------
def load_published(path):
    """[entries]; each: module, benchmark, metric, value, source, ref, optional note."""
    if not path or not osp.isfile(path):
        raise ConfigError(f'published results file not found: {path!r}')
    from mmengine.fileio import load
    entries = load(path)
    for i, e in enumerate(entries):
        missing = {'module', 'benchmark', 'metric', 'value', 'source', 'ref'} - set(e)
        if missing:
            raise ConfigError(f'{path}: entry {i} lacks {sorted(missing)}: {e}')
        if e['source'] not in ('paper', 'mmdet', 'mmseg'):
            raise ConfigError(f'{path}: entry {i}: source must be paper, mmdet or mmseg, got '
                              f'{e["source"]!r}')
    return entries


def toy_runs(roots, device):
    """Test runs under ``roots``: dicts of work_dir, config, scope, instances, metrics."""
    runs = []
    for root in roots:
        for work_dir in sorted(glob.glob(osp.join(root, '*'))):
            if not osp.isdir(work_dir):
                continue
            metrics_files = sorted(
                f for f in glob.glob(osp.join(work_dir, '*', '*.json'))
                if osp.basename(f)[:-5] == osp.basename(osp.dirname(f)))
            configs = sorted(glob.glob(osp.join(work_dir, '*.py')), key=osp.getmtime)
            if not metrics_files or not configs:
                continue
            try:
                with open(metrics_files[-1]) as f:
                    metrics = json.load(f)
                cfg, scope = load_config(configs[-1])
                model = build_model(cfg, scope, device)
            except Exception as e:  # noqa: B902  (one unreadable run must not stop the zoo)
                log(f'  skipped {work_dir}: {type(e).__name__}: {e}')
                continue
            runs.append(dict(work_dir=_rel(work_dir), config=osp.basename(configs[-1]),
                             scope=scope, instances=_instances(model), metrics=metrics))
    return runs


def _metric_text(scope, metrics):
    shown = [f'{label} {metrics[k]:g}' for k, label in MAIN_METRICS.get(scope, [])
             if k in metrics]
    if not shown:
        shown = [f'{k} {v:g}' for k, v in metrics.items()
                 if isinstance(v, (int, float)) and k not in ('data_time', 'time', 'step')][:2]
    return ', '.join(shown)


def _placement_key(scope, instances):
    """Attention modules and their places, independent of the model's widths."""
    return (scope, tuple(sorted((c, n) for c, names in instances.items() for n in names)))


# -- tables -----------------------------------------------------------------------------------
def _fmt(x, unit=''):
    for div, suffix in ((1e9, 'G'), (1e6, 'M'), (1e3, 'K')):
        if abs(x) >= div:
            return f'{x / div:.2f} {suffix}{unit}'
    return f'{x:.0f}'


def _pct(x, total):
    return f'{100 * x / total:.2f}%' if total else ''


def _paper(cls):
    m = re.match(r'^(.*)\(([^()]*)\)\s*$', cls.paper or '')
    return (m.group(2).strip(), m.group(1).strip()) if m else (cls.paper or '', '')


def _code(cls):
    if not cls.code:
        return 'none released'
    short = re.sub(r'^https?://github\.com/', '', cls.code)
    return f'[{short}]({cls.code})'


def _rel(path):
    return osp.relpath(path, ROOT) if osp.isabs(path) else path


def build_tables(args):
    classes = attention_classes()
    if not args.no_classifier:
        check_placements(classes)  # before the minutes of counting
    cache = Cache(args.cache_dir, enabled=not args.no_cache)
    shape = parse_shape(args.shape)
    cshape = parse_shape(args.classifier_shape)
    published = load_published(args.published)
    t0 = time.time()

    paths = sorted(glob.glob(osp.join(args.config_dir, '*.py')))
    if not paths:
        raise ConfigError(f'no configs (*.py) in {args.config_dir!r}')
    log(f'model zoo: {len(paths)} configs in {args.config_dir}, {len(classes)} modules')
    _, base = config_record(args.baseline, cache, shape, args.device, True)
    base_c = Complexity.from_dict(base['complexity'])
    records = {p: config_record(p, cache, shape, args.device, True) for p in paths}
    unknown = {c for _, r in records.values() for c in r['instances']} - set(classes)
    if unknown:
        raise ConfigError(f'configs use attention classes the registry does not list: {unknown}')

    runs = [r for root in args.toy_work_dirs for r in toy_runs([root], args.device)]
    toy = defaultdict(list)
    for run in runs:
        toy[_placement_key(run['scope'], run['instances'])].append(run)

    lines = [
        f'Generated by `python tools/analysis/model_zoo.py --update {ZOO_PAGE}` from the '
        'registry, '
        f'`{_rel(args.config_dir)}/*.py`, `{_rel(args.published)}` and the toy test runs under '
        + ', '.join(f'`{_rel(d)}`' for d in args.toy_work_dirs) + '. Re-run it after adding a '
        'module or a config.', '',
        f'Overheads are those of the module\'s instances in Faster R-CNN R50-FPN on one '
        f'{shape[0]}x{shape[1]} image (model input {tuple(base_c.input_shape)[2:]} after '
        f'padding), against the plain detector (`{args.baseline}`: '
        f'{_fmt(base_c.params)} parameters, {_fmt(base_c.flops)}FLOPs), counted by '
        'mmengine\'s FlopAnalyzer through `tools/analysis/get_flops.py`\'s function: one FLOP '
        'is one multiply-add, and element-wise operators (gates, sigmoid, softmax, means) are '
        'not counted. Published results are the authors\' (paper) or OpenMMLab\'s (mmdet, '
        'mmseg) model zoos, with the setting they were measured in; toy results are ours '
        '(`tools/test.py` on the toy data sets, small models trained from scratch: they show '
        'the configs run, not how the modules compare).', '']
    base_pub = [e for e in published if e['module'] == 'plain' and e['metric'] != 'params (M)']
    if base_pub:
        lines.append('Plain baselines, published: ' + '; '.join(
            f'{e["benchmark"]}: {e["value"]} {e["metric"]} ({e["source"]})' for e in base_pub)
            + '.')
    plain_toy = toy.get(_placement_key('mmdet', {}), [])
    if plain_toy:
        lines.append('Plain toy Faster R-CNN, ours: ' + '; '.join(
            f'{_metric_text("mmdet", r["metrics"])} (`{r["work_dir"]}`)' for r in plain_toy)
            + '.')
    lines += ['', 'One row per module; a module used by several configs has one line per config '
              'in the config, overhead and toy columns. Placement: where the config puts the '
              'module, and how many instances the model has.', '',
              '| module | family | paper | authors\' code | config: placement | '
              '+params (R50-FPN) | +FLOPs (R50-FPN) | published | toy (ours) |',
              '|---|---|---|---|---|---|---|---|---|']
    for name, cls in classes.items():
        cite, title = _paper(cls)
        pubs = '<br>'.join(
            f'{e["benchmark"]}: {e["value"]} {e["metric"]} ({e["source"]}'
            + (f'; {e["note"]}' if e.get('note') else '') + ')'
            for e in published if e['module'] == name and e['metric'] != 'params (M)')
        uses = [(p, cfg, r) for p, (cfg, r) in records.items() if name in r['instances']]
        # detectors first, the backbone placement before the neck variants
        uses.sort(key=lambda x: (not x[2]['detector'], '-neck' in osp.basename(x[0]), x[0]))
        where, params, flops, toys = [], [], [], []
        if not any(r['detector'] for _, _, r in uses):
            where.append('no Faster R-CNN config' if uses else 'no config')
            params.append('')
            flops.append('')
            toys.append('')
        for path, cfg, rec in uses:
            inst = rec['instances'][name]
            where.append(f'`{_rel(path)}`: {describe_placement(cfg, name, inst)} '
                         f'(x{len(inst)})')
            if rec['complexity']:
                c = Complexity.from_dict(rec['complexity'])
                a = c.attention[name]
                p_cell = f'{_fmt(a["params"])} ({_pct(a["params"], base_c.params)})'
                f_cell = f'{_fmt(a["flops"])} ({_pct(a["flops"], base_c.flops)})'
                if any(op.startswith('prim::PythonOp') for op in a['uncounted']):
                    f_cell += ' + a custom op not counted'
                if c.params - base_c.params != c.attention_params:
                    # the config changes more than adding modules
                    p_cell += f'; whole model {_fmt(c.params - base_c.params)}'
            else:
                p_cell = f_cell = 'not a Faster R-CNN'
            params.append(p_cell)
            flops.append(f_cell)
            found = toy.get(_placement_key(rec['scope'], rec['instances']), [])
            toys.append('; '.join(f'{_metric_text(r["scope"], r["metrics"])} '
                                  f'(`{r["config"]}`)' for r in found) or 'not run')
        cells = [f'`{name}`', family_of(cls), cite or title, _code(cls), '<br>'.join(where),
                 '<br>'.join(params), '<br>'.join(flops), pubs, '<br>'.join(toys)]
        lines.append('| ' + ' | '.join(cells) + ' |')
    log(f'model zoo: configs and toy runs done in {time.time() - t0:.0f} s')
    zoo = '\n'.join(lines).rstrip() + '\n'

    if args.no_classifier:
        return zoo, '', None
    plain, counts = classifier_counts(classes, cache, cshape, args.device)
    clines = [
        f'ResNet-50 classifier (backbone, global average pool, 2048x1000 fc) at '
        f'{cshape[0]}x{cshape[1]}, each module placed as its class\'s `placement` says (its '
        'authors\' ImageNet network for SE, CBAM, SGE, SRM, triplet attention and SimAM, and '
        'for SKConv SKNet-50, a ResNeXt-50 32x4d; the detection config\'s placement for the '
        'others; '
        '`tests/test_models/test_backbones/test_param_counts.py` checks both). Plain: '
        f'{plain.params:,} parameters'
        + ''.join(f' ({e["value"]} M published, {e["ref"]})' for e in published
                  if e['module'] == 'plain' and e['metric'] == 'params (M)')
        + f', {_fmt(plain.flops)}FLOPs (mmengine: multiply-adds; element-wise operators are '
        'not counted, the table lists those inside each module).', '',
        '| module | params | +params | FLOPs | +FLOPs | ops in the module not counted | '
        'published params |',
        '|---|---|---|---|---|---|---|']
    for name, cls in classes.items():
        if name not in counts:
            clines.append(f'| `{name}` | not placed: {cls.no_placement} | | | | | |')
            continue
        c = counts[name]
        a = _added(c, name)
        ops = ', '.join(op.replace('aten::', '') for op in a['uncounted'])
        pub = '; '.join(f'{e["value"]} M ({e["source"]})' for e in published
                        if e['module'] == name and e['metric'] == 'params (M)'
                        and e['benchmark'].startswith('ImageNet'))
        clines.append(
            f'| `{name}` | {c.params:,} | {a["params"]:,} ({_pct(a["params"], plain.params)}) '
            f'| {_fmt(c.flops)} | {_fmt(a["flops"])} ({_pct(a["flops"], plain.flops)}) '
            f'| {ops} | {pub} |')
    table = module_table(classes, plain, counts, cshape)
    return zoo, '\n'.join(clines) + '\n', table


# -- the ResNet-50 classifier and the README's module table -----------------------------------
def _added(c, name):
    """Parameters, FLOPs and uncounted operators of the ``name`` instances of a count."""
    return c.attention.get(name, dict(params=0, flops=0, uncounted={}))


def check_placements(classes):
    """Refuse classes that declare neither a ResNet-50 placement nor a reason for none."""
    gaps = [gap for cls in classes.values() for gap in missing_declarations(cls)
            if 'placement' in gap]
    if gaps:
        raise ConfigError('\n'.join(gaps))


def classifier_counts(classes, cache, shape, device):
    """(plain ResNet-50's count, {name: count with the module at its class's placement}) for
    the placed modules; a class that declares neither a placement nor a reason is an error."""
    check_placements(classes)
    plain = classifier_record('plain', None, cache, shape, device)
    counts = {name: classifier_record(name, copy.deepcopy(cls.placement), cache, shape, device)
              for name, cls in classes.items() if cls.placement is not None}
    return plain, counts


def module_table(classes, plain, counts, shape) -> str:
    """The README's module table: one row per module, family by family."""
    lines = [
        '| module | family | paper | where it plugs in | +params (ResNet-50) | '
        f'+FLOPs (ResNet-50, {shape[0]}x{shape[1]}) |',
        '|---|---|---|---|---|---|']
    order = sorted(classes, key=lambda name: (
        FAMILIES.index(family_of(classes[name])) if family_of(classes[name]) in FAMILIES
        else len(FAMILIES), name.lower()))
    for name in order:
        cls = classes[name]
        cite, title = _paper(cls)
        params = flops = '-'
        count = None
        if name in counts:
            a = _added(counts[name], name)
            params = f'{_fmt(a["params"])} ({_pct(a["params"], plain.params)})'
            flops = f'{_fmt(a["flops"])} ({_pct(a["flops"], plain.flops)})'
            count = len(a.get('instances', []))
        where = placement_text(name, cls) + (f' (x{count})' if count is not None else '')
        lines.append(f'| `{name}` | {family_of(cls)} | {cite or title} | {where} | {params} | '
                     f'{flops} |')
    lines += ['', f'What each module adds to a plain ResNet-50 classifier ({plain.params:,} '
              f'parameters, {_fmt(plain.flops)}FLOPs; one FLOP is one multiply-add, element-wise '
              'operators are not counted), placed as its class\'s `placement` says: as its '
              'authors place it, or as its detection config does where the authors give no '
              'ResNet-50; "x16" is the number of instances. Generated by '
              '`python tools/analysis/model_zoo.py --readme README.md`; the '
              f'[model zoo]({ZOO_PAGE}) has the configs, their Faster R-CNN overheads and the '
              'published results.']
    return '\n'.join(lines) + '\n'


def update_file(path, text, markers=(START, END)):
    """Replace what lies between the markers of ``path`` (or append them with ``text``)."""
    start, end = markers
    with open(path) as f:
        content = f.read()
    block = f'{start}\n{text.rstrip()}\n{end}'
    if content.count(start) == 0 and content.count(end) == 0:
        content = content.rstrip('\n') + '\n\n' + block + '\n'
    elif content.count(start) != 1 or content.count(end) != 1 or \
            content.index(start) > content.index(end):
        raise ConfigError(f'{path}: needs exactly one {start} followed by one {end}, or '
                          'neither (the table is then appended)')
    else:
        content = (content[:content.index(start)] + block
                   + content[content.index(end) + len(end):])
    with open(path, 'w') as f:
        f.write(content)


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.readme and args.no_classifier:
            raise ConfigError('--readme needs the ResNet-50 counts: drop --no-classifier')
        zoo, classifier, table = build_tables(args)
        text = zoo + ('\n' + classifier if classifier else '')
        if args.update:
            update_file(args.update, text)
            log(f'model zoo written to {args.update}')
        if args.readme:
            update_file(args.readme, table, TABLE_MARKERS)
            log(f'module table written to {args.readme}')
        if not (args.update or args.readme):
            print(text + ('\n' + table if table else ''))
    except ConfigError as e:
        print(f'model_zoo.py: error: {e}', file=sys.stderr)
        sys.exit(2)
    return text


if __name__ == '__main__':
    main()
