"""ImageNet classification with mmpretrain: the configs, the toy ImageNet and the toy classifier,
and the classifier's checkpoint as a detector's starting point.

- ``configs/imagenet/``: every config builds its class's ``placement`` (plugins or a conv
  slot) on the ResNet (SKNet-50: ResNeXt) of its depth, inside mmpretrain's recipe for that
  network, with the parameter count of that classifier; without its module the backbone is
  mmpretrain's, BN training included.
- ``tools/dataset_converters/make_toy_imagenet.py``: mmpretrain's ImageNet layout,
  deterministic, balanced, train and val from disjoint digits.
- A plain-ResNet classifier checkpoint (mmpretrain's keys) loaded into an SE detector with
  ``prefix='backbone.'`` fills every ResNet weight, and the backbone says that it holds none of
  the SE weights; an SE classifier's fills them all, and nothing is said.
- The tools refuse an mmpretrain config in one line where mmpretrain cannot be imported (a
  torchvision that fails as one built for another torch does, put first on the path), and name
  the toy ImageNet where its data is missing.
- Where mmpretrain imports (it needs a working torchvision): the toy classifier trains and
  tests through tools/train.py and tools/test.py, and the toy detector fine-tunes from it.
"""
import glob
import hashlib
import importlib
import importlib.util
import logging
import os
import os.path as osp
import sys

import pytest
import torch

from tests.helpers import requires_mmdet
from tests.test_tools.toy_run import ROOT, make_toy_coco, run_tool

IMAGENET = sorted(glob.glob(osp.join(ROOT, 'configs', 'imagenet', '*.py')))
TOY_CLS = osp.join(ROOT, 'configs', 'toy', 'resnet50_se_toy-imagenet.py')
TOY_FT = osp.join(ROOT, 'configs', 'toy', 'faster_rcnn_se_r50_toy-coco_ft-cls.py')
MAKER = osp.join(ROOT, 'tools', 'dataset_converters', 'make_toy_imagenet.py')
# the plugin form of SK, after conv2 + bn2 + ReLU, is not its authors' layout: no ImageNet config
# claims its network (SKNet-50 is SKConv's config, in the conv slot)
NOT_THE_AUTHORS = {'SelectiveKernel'}
# a config's module settings beyond its class's placement (which says where the module goes,
# with the module's defaults): SimAM's lambda, 0.1 in the authors' ImageNet training
# (ZjjConan/SimAM README: --attention_param 0.1) where the module's default is 1e-4
SETTINGS = {'SimAM': dict(e_lambda=0.1)}
# the AttnResNet / AttnResNeXt arguments a placement may set
PLACEMENT_KEYS = ('plugins', 'stage_plugins', 'conv1_cfg', 'conv2_cfg', 'stage_with_conv1_cfg',
                  'stage_with_conv2_cfg', 'groups', 'base_width')
# mmpretrain's backbone types and mmattn's counterparts (mmdet's ResNet and ResNeXt)
OURS = {'ResNet': 'mmattn.AttnResNet', 'ResNeXt': 'mmattn.AttnResNeXt'}


def _mmpretrain_problem():
    try:
        import mmpretrain.datasets  # noqa: F401
        import mmpretrain.evaluation  # noqa: F401
        import mmpretrain.models  # noqa: F401
    except Exception as err:  # noqa: BLE001
        return f'{type(err).__name__}: {err}'
    return None


MMPRETRAIN_PROBLEM = _mmpretrain_problem()
requires_mmpretrain = pytest.mark.skipif(
    MMPRETRAIN_PROBLEM is not None,
    reason=f'mmpretrain does not import here ({MMPRETRAIN_PROBLEM})')


def _maker():
    sys.path.insert(0, osp.dirname(MAKER))
    try:
        return importlib.import_module('make_toy_imagenet')
    finally:
        sys.path.remove(osp.dirname(MAKER))


def _count(model):
    return sum(p.numel() for p in model.parameters())


# -- the ImageNet configs ------------------------------------------------------------------------

def _placement_specs(backbone):
    """The arguments of a backbone config that place its module, as a class's placement
    writes them."""
    return {key: backbone[key] for key in PLACEMENT_KEYS if backbone.get(key) is not None}


def _types_in(obj):
    """Every ``type`` string in a (nested) config dict or list."""
    if isinstance(obj, dict):
        if isinstance(obj.get('type'), str):
            yield obj['type']
        for value in obj.values():
            yield from _types_in(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _types_in(value)


def _config_class(backbone):
    """(name, class) of the one attention module a backbone config places, or (None, None)."""
    from mmattn.models.factory import attention_classes
    classes = attention_classes()
    names = {t.split('.')[-1] for t in _types_in(_placement_specs(backbone))} & set(classes)
    assert len(names) <= 1, names
    if not names:
        return None, None
    name = names.pop()
    return name, classes[name]


def _with_settings(obj, name, settings):
    """``obj`` (a placement) with ``settings`` added to every config of ``mmattn.<name>``."""
    if isinstance(obj, dict):
        out = {k: _with_settings(v, name, settings) for k, v in obj.items()}
        return dict(out, **settings) if obj.get('type') == f'mmattn.{name}' else out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_with_settings(v, name, settings) for v in obj)
    return obj


def _recipe(cfg):
    """The mmpretrain recipe a config's network takes (resnet{depth}_8xb32_in1k, or
    resnext{depth}-{groups}x{width}d_8xb32_in1k for a ResNeXt) and the config's name prefix."""
    backbone = cfg.model.backbone
    depth = backbone.depth
    if backbone.type == 'mmattn.AttnResNeXt':
        net = f'resnext{depth}-{backbone.groups}x{backbone.base_width}d'
        return f'mmpretrain::resnext/{net}_8xb32_in1k.py', f'{net}_'
    return f'mmpretrain::resnet/resnet{depth}_8xb32_in1k.py', f'resnet{depth}_'


def test_every_placed_module_has_a_resnet50_config():
    from mmengine.config import Config

    from mmattn.models.factory import attention_classes
    found = set()
    for path in IMAGENET:
        cfg = Config.fromfile(path)
        if cfg.model.backbone.depth == 50:
            name, _ = _config_class(cfg.model.backbone)
            found.add(name)
    placed = {name for name, cls in attention_classes().items() if cls.placement is not None}
    assert placed - NOT_THE_AUTHORS <= found, sorted(placed - NOT_THE_AUTHORS - found)
    assert {'SKConv', 'SimAM'} <= found  # the conv slot's: their authors' layouts
    assert None in found  # the plain baseline
    assert not found & NOT_THE_AUTHORS


@requires_mmdet
@pytest.mark.parametrize('path', IMAGENET, ids=lambda p: osp.basename(p)[:-3])
def test_imagenet_config_builds_the_placement(path):
    """mmpretrain's recipe for the network (ResNet, or ResNeXt for SKNet-50) with only the
    backbone changed; the backbone is the class's placement on an AttnResNet (AttnResNeXt) of
    the config's depth, its BN layers train (norm_eval=False, mmpretrain's default), and the
    classifier has the parameters of that network (backbone + pool + linear head)."""
    from mmengine.config import Config
    from torch.nn.modules.batchnorm import _BatchNorm

    from mmattn.models.backbones import count_parameters, resnet_classifier
    from mmattn.registry import MODELS
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmpretrain'
    assert cfg.custom_imports.imports == ['mmattn']
    depth = cfg.model.backbone.depth
    recipe, prefix = _recipe(cfg)
    assert osp.basename(path).startswith(prefix)
    # everything but the backbone is mmpretrain's recipe for the network
    base = Config.fromstring(f"_base_ = '{recipe}'\n", '.py')
    ours = cfg.to_dict()
    theirs = base.to_dict()
    for key in set(ours) | set(theirs):
        if key in ('model', 'custom_imports'):
            continue
        assert ours.get(key) == theirs.get(key), key
    backbone = dict(cfg.model.backbone)
    theirs = dict(base.model.backbone)
    assert backbone.pop('type') == OURS[theirs.pop('type')]
    assert backbone.pop('norm_eval', True) is False  # mmdet's default: True
    name, cls = _config_class(backbone)
    specs = _placement_specs(backbone)
    for key in specs:
        backbone.pop(key)
    if 'width_per_group' in theirs:  # mmpretrain's ResNeXt: groups and width in the placement
        assert (specs['groups'], specs['base_width']) == \
            (theirs.pop('groups'), theirs.pop('width_per_group'))
    assert backbone == theirs
    placement = cls.placement if cls is not None else {}
    assert specs == _with_settings(placement, name, SETTINGS.get(name, {})), path
    assert {k: v for k, v in cfg.model.items() if k != 'backbone'} == \
        {k: v for k, v in base.model.items() if k != 'backbone'}

    net = MODELS.build(dict(cfg.model.backbone, init_cfg=None))
    head = cfg.model.head
    expected = count_parameters(resnet_classifier(depth, num_classes=head.num_classes,
                                                  **placement))
    assert _count(net) + head.in_channels * head.num_classes + head.num_classes == expected
    if cls is not None:
        assert any(isinstance(m, cls) for m in net.modules())
    net.train()
    norms = [m for m in net.modules() if isinstance(m, _BatchNorm)]
    assert norms and all(m.training for m in norms)
    if MMPRETRAIN_PROBLEM is None:  # the whole ImageClassifier, built by mmpretrain
        from mmpretrain.registry import MODELS as PRETRAIN_MODELS
        assert _count(PRETRAIN_MODELS.build(cfg.model)) == expected


def _base_configs():
    """One config per network the configs train, by name (``resnet50_``, ``resnext50-32x4d_``;
    the test above checks that the name is the recipe's): the plain one where there is one."""
    found = {}
    for path in IMAGENET:
        net, rest = osp.basename(path).split('_', 1)
        if net not in found or rest == '8xb32_in1k.py':
            found[net] = path
    return [found[net] for net in sorted(found)]


@requires_mmdet
@requires_mmpretrain
@pytest.mark.parametrize('path', _base_configs(), ids=lambda p: osp.basename(p)[:-3])
def test_backbone_without_its_module_is_mmpretrains(path):
    """A config's backbone without its module (plugins and conv slots left out) is the
    backbone of mmpretrain's recipe: the same tensors, and with them the same outputs in
    training mode (BN on batch statistics, updating its running ones) and in eval mode."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    cfg = Config.fromfile(path)
    base = Config.fromstring(f"_base_ = '{_recipe(cfg)[0]}'\n", '.py')
    ours_cfg = {k: v for k, v in cfg.model.backbone.to_dict().items()
                if k not in PLACEMENT_KEYS or k in ('groups', 'base_width')}
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        ours = PRETRAIN_MODELS.build(ours_cfg).double()
        theirs = PRETRAIN_MODELS.build(base.model.backbone).double()
    torch.manual_seed(0)
    theirs.init_weights()
    for p in theirs.parameters():  # away from the zero-initialised residual norms
        p.data.add_(torch.randn_like(p) * 0.05)
    state = theirs.state_dict()
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in state.items()}
    ours.load_state_dict(state)
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    for train in (True, False):
        ours.train(train)
        theirs.train(train)
        torch.testing.assert_close(ours(x)[-1], theirs(x)[-1], rtol=0, atol=1e-10)
    for k, v in theirs.state_dict().items():  # the running statistics moved alike
        torch.testing.assert_close(ours.state_dict()[k], v, rtol=0, atol=1e-10)


# -- the toy ImageNet ------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    out = tmp_path_factory.mktemp('toy') / 'toy_imagenet'
    _maker().generate(str(out), num_train=40, num_val=20)
    return str(out)


def _digest(root):
    h = hashlib.sha1()
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            h.update(osp.relpath(osp.join(dirpath, f), root).encode())
            with open(osp.join(dirpath, f), 'rb') as fh:
                h.update(fh.read())
    return h.hexdigest()


def test_toy_imagenet_layout(toy_root):
    from PIL import Image
    maker = _maker()
    classes = open(osp.join(toy_root, 'meta', 'classes.txt')).read().split()
    assert classes == list(maker.CLASSES)
    for split, n in (('train', 40), ('val', 20)):
        lines = open(osp.join(toy_root, 'meta', f'{split}.txt')).read().split('\n')[:-1]
        assert len(lines) == n
        labels = [int(line.rsplit(' ', 1)[1]) for line in lines]
        assert sorted(labels) == sorted(list(range(10)) * (n // 10))  # balanced
        for line in lines:
            rel, label = line.rsplit(' ', 1)
            if split == 'train':  # a folder per class, as ImageNet's
                assert rel.split('/')[0] == maker.FOLDERS[int(label)]
            else:
                assert '/' not in rel
            with Image.open(osp.join(toy_root, split, rel)) as img:
                assert img.size == (32, 32) and img.mode == 'RGB'


def test_toy_imagenet_is_deterministic_and_stamped(toy_root, tmp_path):
    maker = _maker()
    again = str(tmp_path / 'again')
    maker.generate(again, num_train=40, num_val=20)
    assert _digest(again) == _digest(toy_root)
    assert 'nothing to do' in maker.generate(again, num_train=40, num_val=20)
    assert 'written' in maker.generate(again, num_train=30, num_val=20)
    with pytest.raises(ValueError, match='at least 10'):
        maker.generate(str(tmp_path / 'few'), num_train=5, num_val=20)
    foreign = tmp_path / 'foreign'
    (foreign / 'train').mkdir(parents=True)
    with pytest.raises(SystemExit, match='--force'):
        maker.generate(str(foreign), num_train=10, num_val=10)


def test_train_and_val_digits_are_disjoint():
    maker = _maker()
    _, labels = maker.load_digit_images()
    train, val = maker.split_digits(labels, 0)
    assert not set(train.tolist()) & set(val.tolist())


@requires_mmpretrain
def test_mmpretrain_imagenet_dataset_reads_it(toy_root):
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import DATASETS
    cfg = Config.fromfile(TOY_CLS)
    for key, n in (('train_dataloader', 40), ('val_dataloader', 20)):
        ds_cfg = dict(cfg[key].dataset, data_root=toy_root)
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            dataset = DATASETS.build(ds_cfg)
        assert len(dataset) == n and dataset.CLASSES == tuple(str(d) for d in range(10))
        sample = dataset[3]
        assert tuple(sample['inputs'].shape) == (3, 32, 32)
        assert int(sample['data_samples'].gt_label) == 3


# -- the tools on an mmpretrain config ---------------------------------------------------------

def test_missing_toy_imagenet_is_named(tmp_path):
    from mmengine.config import Config

    from mmattn.utils import DatasetNotFoundError, check_dataset_paths
    from mmattn.utils.data_check import set_data_root
    cfg = Config.fromfile(TOY_CLS)
    set_data_root(cfg, str(tmp_path / 'nowhere'))
    assert cfg.train_dataloader.dataset.data_root == str(tmp_path / 'nowhere')
    with pytest.raises(DatasetNotFoundError) as err:
        check_dataset_paths(cfg)
    msg = str(err.value)
    assert str(tmp_path / 'nowhere' / 'train') in msg
    assert 'make_toy_imagenet.py' in msg and '--data-root' in msg


@pytest.fixture
def broken_torchvision(tmp_path):
    """A PYTHONPATH on which torchvision fails as one built for another torch does (its import
    registers operators the torch lacks), so mmpretrain does not import whatever is installed."""
    fake = tmp_path / 'broken_torchvision'
    (fake / 'torchvision').mkdir(parents=True)
    (fake / 'torchvision' / '__init__.py').write_text(
        "raise RuntimeError('operator torchvision::nms does not exist')\n")
    return os.pathsep.join([str(fake), ROOT, os.environ.get('PYTHONPATH', '')])


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_tools_refuse_in_one_line_where_mmpretrain_does_not_import(tool, broken_torchvision,
                                                                   tmp_path):
    args = [sys.executable, osp.join(ROOT, 'tools', f'{tool}.py'), TOY_CLS]
    if tool == 'test':
        ckpt = tmp_path / 'epoch_1.pth'
        torch.save({'state_dict': {}}, ckpt)
        args.append(str(ckpt))
    proc = run_tool(args + ['--work-dir', str(tmp_path / 'wd')], check=False, timeout=300,
                    env_extra=dict(PYTHONPATH=broken_torchvision))
    assert proc.returncode == 2
    lines = proc.stderr.strip().split('\n')
    assert lines[-1].startswith('error: ') and 'mmpretrain cannot be imported' in lines[-1]
    assert 'torchvision' in lines[-1] and 'Traceback' not in proc.stderr
    assert 'operator torchvision::nms does not exist' in lines[-1]
    assert not (tmp_path / 'wd').exists()


# -- a classifier's checkpoint in a detector ---------------------------------------------------

def _toy_detector_backbone(checkpoint):
    from mmengine.config import Config
    cfg = Config.fromfile(TOY_FT).model.backbone
    cfg.init_cfg.checkpoint = checkpoint
    return cfg.to_dict()


def _classifier_checkpoint(backbone_cfg, path, with_se):
    """A file as mmpretrain saves a toy classifier (backbone., head.fc), from the backbone of
    the toy detector with (or without) its SE modules."""
    from mmattn.registry import MODELS
    cfg = dict(backbone_cfg, init_cfg=None, frozen_stages=-1)
    if not with_se:
        cfg.pop('plugins')
    torch.manual_seed(0)
    net = MODELS.build(cfg)
    state = {f'backbone.{k}': v for k, v in net.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(10, 512)
    state['head.fc.bias'] = torch.zeros(10)
    torch.save({'meta': {'epoch': 30}, 'state_dict': state}, path)
    return net


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@requires_mmdet
@pytest.mark.parametrize('with_se', [False, True])
def test_classifier_checkpoint_into_se_detector(with_se, tmp_path):
    """prefix='backbone.' takes the classifier's backbone; a plain ResNet classifier's leaves
    the SE modules as initialised, and the backbone says so (once, naming the 16 modules); an
    SE classifier's fills them, and nothing is said."""
    from mmengine.logging import MMLogger

    from mmattn.registry import MODELS
    ckpt = str(tmp_path / f"{'se' if with_se else 'plain'}_cls.pth")
    cfg = _toy_detector_backbone(ckpt)
    source = _classifier_checkpoint(cfg, ckpt, with_se)
    detector_backbone = MODELS.build(cfg)
    logger = MMLogger.get_instance(f'mmattn-test-cls-{with_se}')
    handler = _Lines()
    logger.addHandler(handler)
    current = MMLogger._instance_dict.pop('mmengine', None)  # noqa: SLF001
    MMLogger._instance_dict['mmengine'] = logger  # noqa: SLF001
    try:
        detector_backbone.init_weights()
    finally:
        MMLogger._instance_dict.pop('mmengine')  # noqa: SLF001
        if current is not None:
            MMLogger._instance_dict['mmengine'] = current  # noqa: SLF001
        logger.removeHandler(handler)
    ours = detector_backbone.state_dict()
    for k, v in source.state_dict().items():
        assert torch.equal(ours[k], v), k
    said = [line for line in handler.lines if 'holds no weights' in line]
    if with_se:
        assert not said, said
    else:
        assert len(said) == 1 and '16 SE module(s)' in said[0] and ckpt in said[0], said
        assert 'mmpretrain-se' in said[0]


@pytest.mark.skipif(importlib.util.find_spec('mmseg') is None, reason='needs mmseg')
def test_classifier_checkpoint_into_segmentation_backbone(tmp_path):
    """The same checkpoint starts mmseg's ResNetV1b (7x7 stem, dilated last stages: the same
    tensors) with prefix='backbone.': every tensor of the SE backbone is the classifier's."""
    from mmattn.registry import MODELS
    ckpt = str(tmp_path / 'se_cls.pth')
    source = _classifier_checkpoint(_toy_detector_backbone(ckpt), ckpt, with_se=True)
    seg = MODELS.build(dict(
        type='mmattn.AttnResNetV1b', depth=50, stem_channels=16, base_channels=16,
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4), plugins=[dict(cfg=dict(type='mmattn.SE'),
                                              position='after_conv3')],
        init_cfg=dict(type='Pretrained', prefix='backbone.', checkpoint=ckpt)))
    seg.init_weights()
    ours = seg.state_dict()
    assert set(ours) == set(source.state_dict())
    for k, v in source.state_dict().items():
        assert torch.equal(ours[k], v), k


# -- the runs (need mmpretrain) -----------------------------------------------------------------

@requires_mmdet
@requires_mmpretrain
def test_toy_chain_classifier_to_detector(toy_root, tmp_path):
    """tools/train.py and tools/test.py on the toy classifier (mmpretrain's top-1 and top-5;
    its BN layers train), then the toy SE detector fine-tuned from its checkpoint (box mAP
    printed), a few iterations each."""
    cls_dir = tmp_path / 'cls'
    run_tool([sys.executable, 'tools/train.py', TOY_CLS, '--data-root', toy_root,
              '--work-dir', str(cls_dir), '--cfg-options', 'train_cfg.max_epochs=1',
              'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1'],
             env_extra=dict(OMP_NUM_THREADS='1'))
    ckpt = open(cls_dir / 'last_checkpoint').read().strip()
    state = torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict']
    assert any(k.startswith('backbone.layer1.0.se.') for k in state)
    assert 'head.fc.weight' in state
    # the BN layers trained (norm_eval=False): their running statistics left their start
    for name in ('backbone.bn1', 'backbone.layer4.2.bn3'):
        assert not torch.equal(state[f'{name}.running_var'], torch.ones_like(
            state[f'{name}.running_var'])), name
    proc = run_tool([sys.executable, 'tools/test.py', TOY_CLS, ckpt, '--data-root', toy_root,
                     '--work-dir', str(tmp_path / 'cls_test')],
                    env_extra=dict(OMP_NUM_THREADS='1'))
    assert 'accuracy/top1: ' in proc.stdout and 'accuracy/top5: ' in proc.stdout

    coco = make_toy_coco(tmp_path / 'toy_coco', num_train=4, num_val=2)
    det_dir = tmp_path / 'det'
    proc = run_tool([sys.executable, 'tools/train.py', TOY_FT, '--data-root', coco,
                     '--work-dir', str(det_dir), '--cfg-options',
                     f'model.backbone.init_cfg.checkpoint={ckpt}', 'train_cfg.max_epochs=1',
                     'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1',
                     'train_dataloader.batch_size=2'],
                    env_extra=dict(OMP_NUM_THREADS='1'))
    assert 'holds no weights' not in proc.stdout + proc.stderr
    assert 'coco/bbox_mAP: ' in proc.stdout + proc.stderr


# -- the papers' tables ----------------------------------------------------------------------------

def _as_published(value, published):
    """``value`` with as many decimals as the ``published`` figure has."""
    decimals = len(published.split('.')[1]) if '.' in published else 0
    return f'{value:.{decimals}f}'


@requires_mmdet
def test_paper_tables_name_configs_and_match_exact_counts():
    """Every paper row names a config here; where the paper counts the whole network (all but
    ECA-Net's table, which leaves part of it out), our parameter count is the paper's, to the
    digits it prints."""
    from tests.helpers import load_tool
    tables = load_tool('analysis', 'paper_tables.py')
    names = {osp.basename(p)[:-3] for p in IMAGENET}
    assert set(tables.PAPERS) <= names, sorted(set(tables.PAPERS) - names)
    for name, (params, flops, source) in tables.PAPERS.items():
        assert source
        for figure in (params, flops):
            assert figure is None or (isinstance(figure, str) and float(figure) > 0), name
        if params is None or '_eca_' in name:
            continue
        model = tables.classifier_of(osp.join(ROOT, 'configs', 'imagenet', f'{name}.py'))
        assert _as_published(_count(model) / 1e6, params) == params, name


@requires_mmdet
def test_paper_tables_prints_a_row_per_config(capsys):
    from tests.helpers import load_tool
    tables = load_tool('analysis', 'paper_tables.py')
    assert tables.main(['--configs', 'resnet50_se_8xb32_in1k', 'resnet18_cbam_8xb32_in1k',
                        'resnext50-32x4d_sk_8xb32_in1k']) == 0
    out = capsys.readouterr().out.strip().split('\n')
    assert len(out) == 5 and out[0].startswith('| config |')
    se = next(line for line in out if 'resnet50_se_' in line).split('|')
    assert se[2].strip() == '28.09' and se[3].strip() == '28.09' and 'Hu et al.' in se[6]
    # SKNet-50: 27.48 M here, 27.5 M as the paper prints it
    sk = next(line for line in out if 'resnext50-32x4d_sk_' in line).split('|')
    assert sk[2].strip() == '27.48' and sk[3].strip() == '27.5' and sk[5].strip() == '4.47'
    assert 'Selective Kernel' in sk[6]
