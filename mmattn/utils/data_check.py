"""Say clearly where a config expects its data, before a run fails deep inside a dataset."""
import os
import os.path as osp

# What each known layout needs and how to get it.
_HINTS = {
    'CocoDataset': (
        'COCO goes under data/coco: data/coco/annotations/instances_{train,val}2017.json, '
        'data/coco/train2017/, data/coco/val2017/ (https://cocodataset.org/#download). For '
        'the bundled toy data run '
        '`python tools/dataset_converters/make_toy_coco.py` and use a configs/toy/ config.'),
    'CityscapesDataset': (
        'Cityscapes goes under data/cityscapes: leftImg8bit/{train,val}/ and '
        'gtFine/{train,val}/ with *_gtFine_labelTrainIds.png (make them with mmseg\'s '
        'tools/dataset_converters/cityscapes.py). For the bundled toy data run '
        '`python tools/dataset_converters/make_toy_cityscapes.py` and use a configs/toy/ '
        'config.'),
    'ImageNet': (
        'ImageNet goes under data/imagenet as mmpretrain lays it out: train/ (a folder per '
        'class), val/, and meta/train.txt, meta/val.txt (https://image-net.org/download.php; '
        'mmpretrain\'s docs/en/user_guides/dataset_prepare.md). For the bundled toy data run '
        '`python tools/dataset_converters/make_toy_imagenet.py` and use a configs/toy/ '
        'config.'),
}


LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
EVALUATORS = ('val_evaluator', 'test_evaluator')


class DatasetNotFoundError(FileNotFoundError):
    """A config's dataset is not where the config says."""


def _datasets(cfg, with_keys=False):
    """The datasets of every dataloader (through wrappers): ``(loader, dataset)``, or
    ``(loader, dataset, its dotted key in the config)`` with ``with_keys``."""
    for key in LOADERS:
        loader = cfg.get(key)
        if not loader:
            continue
        stack = [(loader.get('dataset'), f'{key}.dataset')]
        while stack:
            ds, where = stack.pop()
            if not ds:
                continue
            if 'dataset' in ds:  # wrappers: RepeatDataset, ClassBalancedDataset, ...
                stack.append((ds['dataset'], f'{where}.dataset'))
            if 'datasets' in ds:  # ConcatDataset
                stack.extend((d, f'{where}.datasets.{i}') for i, d in enumerate(ds['datasets']))
            # mmpretrain's ImageNet names its folder and annotation list by ``split`` alone
            if 'type' in ds and ('ann_file' in ds or 'data_prefix' in ds or 'split' in ds):
                yield (key, ds, where) if with_keys else (key, ds)


def set_data_root(cfg, data_root: str) -> list:
    """Point a config at data under ``data_root``; return the keys changed (``--data-root``).

    OpenMMLab configs write ``data_root = 'data/coco/'`` once and join it into every dataset
    (``dataset=dict(data_root=data_root, ...)``) and evaluator
    (``ann_file=data_root + 'annotations/...'``) when the file is read, so
    ``--cfg-options data_root=...`` comes too late to change any of them. This sets the
    ``data_root`` of every dataloader's dataset (through dataset wrappers), and re-roots each
    evaluator's ``ann_file`` that lay under a dataset's old root.
    """
    if not isinstance(data_root, str) or not data_root:
        raise ValueError(f'data_root must be a non-empty path, got {data_root!r}')
    old_roots, changed = set(), []
    for _, ds, where in _datasets(cfg, with_keys=True):
        old = ds.get('data_root')
        if old:
            old_roots.add(str(old))
        # keep the trailing slash configs often rely on (data_root + 'annotations/...')
        ds['data_root'] = data_root if not str(old or '').endswith('/') else \
            data_root.rstrip('/') + '/'
        changed.append(f'{where}.data_root')
    if 'data_root' in cfg:
        old_roots.add(str(cfg['data_root']))
        cfg['data_root'] = data_root
        changed.append('data_root')
    for key in EVALUATORS:
        evaluators = cfg.get(key)
        if not evaluators:
            continue
        many = isinstance(evaluators, (list, tuple))
        for i, evaluator in enumerate(evaluators if many else [evaluators]):
            ann = evaluator.get('ann_file') if isinstance(evaluator, dict) else None
            if not isinstance(ann, str):
                continue
            # longest first: 'data/coco/' before 'data/'
            for old in sorted(old_roots, key=len, reverse=True):
                if ann.startswith(old):
                    evaluator['ann_file'] = osp.join(data_root, ann[len(old):].lstrip('/'))
                    changed.append(f'{key}.{i}.ann_file' if many else f'{key}.ann_file')
                    break
    return changed


def data_root_hint(cfg, root_example: str = 'DIR') -> str:
    """How to point ``cfg`` at its data: the tools' ``--data-root``, or the exact
    ``--cfg-options`` keys (``--cfg-options data_root=...`` alone changes nothing)."""
    found = list(_datasets(cfg, with_keys=True))
    options = [f'{where}.data_root={root_example}' for where in dict.fromkeys(w for *_, w in found)]
    roots = sorted({str(ds['data_root']) for _, ds, _ in found if ds.get('data_root')},
                   key=len, reverse=True)
    for key in EVALUATORS:
        evaluator = cfg.get(key)
        ann = evaluator.get('ann_file') if isinstance(evaluator, dict) else None
        # an evaluator reading the annotations under the old root (COCO's) moves with it
        old = next((r for r in roots if isinstance(ann, str) and ann.startswith(r)), None)
        if old is not None:
            options.append(f'{key}.ann_file={root_example}/{ann[len(old):].lstrip("/")}')
    return (f'To use data elsewhere, pass `--data-root {root_example}` to tools/train.py or '
            f'tools/test.py (it sets the data_root of every dataloader\'s dataset and moves the '
            f'evaluators\' annotation files along), or, with any tool, '
            f'`--cfg-options {" ".join(options)}`; `--cfg-options data_root=...` alone changes '
            f'nothing, as the config has already joined data_root into each dataset.')


def check_dataset_paths(cfg, loaders=LOADERS) -> None:
    """Raise :class:`DatasetNotFoundError` naming the missing path and where the data goes."""
    for key, ds in _datasets(cfg):
        if key not in loaders:
            continue
        root = ds.get('data_root') or ''
        ds_type = str(ds.get('type', '')).split('.')[-1]
        paths = []
        if ds.get('ann_file'):
            paths.append(('annotation file', ds['ann_file']))
        prefixes = ds.get('data_prefix') or {}
        if isinstance(prefixes, str):  # mmpretrain's datasets take one folder
            prefixes = dict(img=prefixes)
        if not prefixes and ds.get('split'):  # mmpretrain's ImageNet: data_root/<split>/
            prefixes = {ds['split']: ds['split']}
        for name, prefix in prefixes.items():
            if prefix:
                paths.append((f'{name} folder', prefix))
        for what, rel in paths:
            path = rel if osp.isabs(rel) or not root else osp.join(root, rel)
            if '://' in str(path):  # remote storage backends are not checked
                continue
            if not osp.exists(path):
                hint = _HINTS.get(ds_type, 'Put the data where the config expects it.')
                raise DatasetNotFoundError(
                    f'{key}: the {ds_type or "dataset"} {what} {path!r} does not exist '
                    f'(data_root={root!r}). {hint} {data_root_hint(cfg)}')
        if ds_type == 'CityscapesDataset':
            _check_label_files(key, ds, root)


def _check_label_files(key, ds, root):
    """Cityscapes' raw gtFine has labelIds only; mmseg trains on *_labelTrainIds.png."""
    seg_dir = (ds.get('data_prefix') or {}).get('seg_map_path')
    if not seg_dir:
        return
    seg_dir = seg_dir if osp.isabs(seg_dir) or not root else osp.join(root, seg_dir)
    suffix = ds.get('seg_map_suffix', '_gtFine_labelTrainIds.png')
    for _, _, files in os.walk(seg_dir):
        if any(f.endswith(suffix) for f in files):
            return
    raise DatasetNotFoundError(
        f'{key}: no *{suffix} files under {seg_dir!r}. Cityscapes ships gtFine with '
        f'labelIds only: create the train-id maps with mmseg\'s '
        f'`python tools/dataset_converters/cityscapes.py {root or "data/cityscapes"}` '
        f'(needs cityscapesscripts), or use the toy data from '
        f'`python tools/dataset_converters/make_toy_cityscapes.py`.')
