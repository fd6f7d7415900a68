"""docs/en/advanced_guides/adding_a_module.md: its example, added and run as the guide says.

The guide's example is three files, each a code block that opens with a comment naming its
path. The module file goes into the channel family's folder (a temporary folder on the
package's search path), where the package's own import registers it; the module then goes
through the conformance suite, AttnResNet at its placement (forward and backward), the
attention-map tool, the model zoo's tables, its own test file, and one training step of the
config.
"""
import os.path as osp
import re
import sys

import pytest
import torch

from mmattn.registry import MODELS
from tests.helpers import load_tool, requires_mmdet

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
GUIDE = osp.join(ROOT, 'docs', 'en', 'advanced_guides', 'adding_a_module.md')
MODULE = 'mmattn/models/channel/gct.py'
TEST = 'tests/test_models/test_channel/test_gct.py'
CONFIG = 'configs/faster_rcnn_gct_r50_coco.py'


def guide_files():
    """{path: text} of the guide's code blocks that open with ``# <path>.py``."""
    with open(GUIDE) as f:
        text = f.read()
    files = {}
    for block in re.findall(r'```python\n(.*?)```', text, flags=re.S):
        first = block.splitlines()[0]
        match = re.fullmatch(r'# ((?:mmattn|tests|configs)/[\w/.-]+\.py)', first)
        if match:
            files[match.group(1)] = block
    return files


def test_the_guide_adds_three_files():
    files = guide_files()
    assert sorted(files) == [CONFIG, MODULE, TEST]
    # new files: nothing of the library is edited, and the example is not shipped
    assert not any(osp.exists(osp.join(ROOT, path)) for path in files)
    with open(GUIDE) as f:
        text = f.read()
    (status, ) = re.findall(r'\$ git status --short\n(.*?)```', text, flags=re.S)
    assert sorted(line.split()[-1] for line in status.splitlines()) == sorted(files)


@pytest.fixture(scope='module')
def gct(tmp_path_factory):
    """The guide's module file, put in the channel family's folder and imported the way the
    family package imports its files; removed from the package and the registry afterwards."""
    from mmattn.models import channel
    from mmattn.models.factory import import_family
    folder = tmp_path_factory.mktemp('channel_family')
    (folder / 'gct.py').write_text(guide_files()[MODULE])
    saved_all = list(channel.__all__)
    channel.__path__.append(str(folder))
    try:
        channel.__all__ = import_family(channel.__name__, channel.__path__, vars(channel))
        yield channel.GCT
    finally:
        channel.__path__.remove(str(folder))
        channel.__all__ = saved_all
        vars(channel).pop('GCT', None)
        MODELS._module_dict.pop('GCT', None)
        sys.modules.pop('mmattn.models.channel.gct', None)


def test_it_registers_from_its_folder(gct):
    from mmattn import build_attention
    from mmattn.models.channel import GCT
    from mmattn.models.factory import attention_classes, family_of, missing_declarations
    assert GCT is gct and 'GCT' in sys.modules['mmattn.models.channel'].__all__
    assert attention_classes()['GCT'] is GCT and family_of(GCT) == 'channel'
    assert missing_declarations(GCT) == []
    m = build_attention(dict(type='mmattn.GCT', mode='l1'), in_channels=64)
    assert isinstance(m, GCT) and m.mode == 'l1'


def test_it_passes_the_conformance_suite(gct):
    from tests.test_models.test_conformance import run_conformance
    not_run = run_conformance(gct)
    # nothing exempted: only checks whose packages are missing here are left out
    assert all(reason.endswith(': not installed') for reason in not_run), not_run


@requires_mmdet
def test_it_plugs_into_attn_resnet(gct):
    from mmattn.models.backbones import (AUTHORS_PLACEMENT, AttnResNet, count_parameters,
                                         resnet50_classifier)
    net = AttnResNet(depth=50, **AUTHORS_PLACEMENT['GCT'])
    net.train()
    blocks = [b for layer in (net.layer1, net.layer2, net.layer3, net.layer4) for b in layer]
    for block in blocks:
        (m, ) = [c for c in block.children() if isinstance(c, gct)]
        assert m.in_channels == block.conv2.out_channels
    x = torch.randn(2, 3, 64, 64, requires_grad=True)
    outs = net(x)
    assert [o.shape[1] for o in outs] == [256, 512, 1024, 2048]
    sum(o.sum() for o in outs).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, p in net.named_parameters():
        if '.gct.' in name:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    # three parameters per channel of every block's 3x3 conv output
    widths = [64] * 3 + [128] * 4 + [256] * 6 + [512] * 3
    assert count_parameters(resnet50_classifier(**AUTHORS_PLACEMENT['GCT'])) == \
        25_557_032 + 3 * sum(widths)


def test_the_attention_map_tool_draws_its_gate(gct):
    from mmattn.visualization import AttentionRecorder, maps_caption
    from tests.helpers import assert_close, randomize_
    m = randomize_(gct(16), seed=2).double().eval()
    x = torch.randn(1, 16, 7, 9, dtype=torch.float64)
    with AttentionRecorder(m) as rec, torch.no_grad():
        out = m(x)
    (r, ) = rec.records
    assert r.maps is not None, r.reason
    gate = r.maps.channel['channel gate']
    ratio = (out / x)[0]
    assert_close(ratio, gate[:, None, None].expand_as(ratio), rtol=1e-9, atol=1e-12)
    assert maps_caption(gct) == gct.maps_caption


@requires_mmdet
def test_the_model_zoo_lists_it(gct, tmp_path):
    zoo = load_tool('analysis', 'model_zoo.py')
    classes = {'GCT': gct}
    plain, counts = zoo.classifier_counts(classes, zoo.Cache(str(tmp_path), enabled=False),
                                          (64, 64), 'cpu')
    table = zoo.module_table(classes, plain, counts, (64, 64))
    (row, ) = [line for line in table.splitlines() if line.startswith('| `GCT`')]
    assert row.startswith('| `GCT` | channel | Yang et al., CVPR 2020 | after conv2, every block '
                          'of layer1-4 (x16) | 11.33 K (0.04%) | ')
    # written between the README's markers, nothing else changed
    readme = tmp_path / 'README.md'
    readme.write_text('# mmattn\n\n<!-- module-table:start -->\nold\n<!-- module-table:end -->'
                      '\n\nmore\n')
    zoo.update_file(str(readme), table, zoo.TABLE_MARKERS)
    text = readme.read_text()
    assert text == ('# mmattn\n\n<!-- module-table:start -->\n' + table.rstrip()
                    + '\n<!-- module-table:end -->\n\nmore\n')


def test_its_test_file_passes(gct):
    namespace = {'__name__': 'test_gct'}
    exec(compile(guide_files()[TEST], TEST, 'exec'), namespace)
    ran = 0
    for name, fn in namespace.items():
        if not name.startswith('test_') or not callable(fn):
            continue
        marks = [m for m in getattr(fn, 'pytestmark', []) if m.name == 'parametrize']
        if not marks:
            fn()
            ran += 1
            continue
        (mark, ) = marks
        argname, values = mark.args
        for value in values:
            fn(**{argname: value})
            ran += 1
    assert ran == 4


@requires_mmdet
def test_its_config_trains_one_step(gct, tmp_path):
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.structures import DetDataSample
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.structures import InstanceData
    register_all_modules()
    path = tmp_path / osp.basename(CONFIG)
    path.write_text(guide_files()[CONFIG])
    cfg = Config.fromfile(str(path))
    # no download of torchvision's weights; and no init_weights(): without those weights
    # mmdet's init zeroes every bn3 (zero_init_residual), which cuts the blocks' branches
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MMDET_MODELS.build(cfg.model)
    model.train()
    gcts = {n: m for n, m in model.named_modules() if isinstance(m, gct)}
    assert len(gcts) == 16
    # what test_param_counts.py checks of every detection config: the class's placement
    # builds the same modules, at the same positions
    from mmattn.models.backbones import AUTHORS_PLACEMENT, resnet50_classifier
    from tests.test_models.test_backbones.test_param_counts import (_attention_summary,
                                                                    _positions)
    ours = resnet50_classifier(**AUTHORS_PLACEMENT['GCT']).backbone
    assert _attention_summary(ours, gct) == _attention_summary(model.backbone, gct)
    assert _positions(AUTHORS_PLACEMENT['GCT'], 'GCT') == _positions(cfg.model.backbone, 'GCT')
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    # the authors' advice, through the config: no weight decay on the gating bias
    decay = {id(p): g['weight_decay'] for g in optim_wrapper.optimizer.param_groups
             for p in g['params']}
    for m in gcts.values():
        assert decay[id(m.beta)] == 0 and decay[id(m.gamma)] > 0

    h, w = 96, 128
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                         pad_shape=(h, w), scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[10., 12., 60., 70.]]),
                                       labels=torch.tensor([3]))
    data = dict(inputs=[torch.randint(0, 256, (3, h, w), dtype=torch.uint8)],
                data_samples=[sample])
    before = {n: m.gamma.detach().clone() for n, m in gcts.items()}
    losses = model.train_step(data, optim_wrapper)
    assert losses and all(torch.isfinite(v).all() for v in losses.values())
    # the step reached every GCT: gamma, zero at the start, moved
    assert all(not torch.equal(before[n], m.gamma) for n, m in gcts.items())

