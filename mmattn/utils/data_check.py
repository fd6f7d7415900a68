"""Say clearly where a config expects its data, before a run fails deep inside a dataset."""
import os
import os.path as osp

# What each known layout needs and how to get it.
_HINTS = {
    'CocoDataset': (
        'COCO goes under data/coco: data/coco/annotations/instances_{train,val}2017.json, '
        'data/coco/train2017/, data/coco/val2017/ (https://cocodataset.org/#download), or '
        'set data_root with --cfg-options. For the bundled toy data run '
        '`python tools/dataset_converters/make_toy_coco.py` and use a configs/toy/ config.'),
    'CityscapesDataset': (
        'Cityscapes goes under data/cityscapes: leftImg8bit/{train,val}/ and '
        'gtFine/{train,val}/ with *_gtFine_labelTrainIds.png (make them with mmseg\'s '
        'tools/dataset_converters/cityscapes.py). For the bundled toy data run '
        '`python tools/dataset_converters/make_toy_cityscapes.py` and use a configs/toy/ '
        'config.'),
}


class DatasetNotFoundError(FileNotFoundError):
    """A config's dataset is not where the config says."""


def _datasets(cfg):
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not loader:
            continue
        stack = [loader.get('dataset')]
        while stack:
            ds = stack.pop()
            if not ds:
                continue
            if 'dataset' in ds:  # wrappers: RepeatDataset, ClassBalancedDataset, ...
                stack.append(ds['dataset'])
            if 'datasets' in ds:  # ConcatDataset
                stack.extend(ds['datasets'])
            if 'type' in ds and ('ann_file' in ds or 'data_prefix' in ds):
                yield key, ds


def check_dataset_paths(cfg, loaders=('train_dataloader', 'val_dataloader',
                                      'test_dataloader')) -> None:
    """Raise :class:`DatasetNotFoundError` naming the missing path and where the data goes."""
    for key, ds in _datasets(cfg):
        if key not in loaders:
            continue
        root = ds.get('data_root') or ''
        ds_type = str(ds.get('type', '')).split('.')[-1]
        paths = []
        if ds.get('ann_file'):
            paths.append(('annotation file', ds['ann_file']))
        for name, prefix in (ds.get('data_prefix') or {}).items():
            if prefix:
                paths.append((f'{name} folder', prefix))
        for what, rel in paths:
            path = rel if osp.isabs(rel) or not root else osp.join(root, rel)
            if '://' in str(path):  # remote storage backends are not checked
                continue
            if not osp.exists(path):
                hint = _HINTS.get(ds_type, 'Set data_root / ann_file / data_prefix with '
                                           '--cfg-options to where the data is.')
                raise DatasetNotFoundError(
                    f'{key}: the {ds_type or "dataset"} {what} {path!r} does not exist '
                    f'(data_root={root!r}). {hint}')
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
