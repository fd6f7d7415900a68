"""tools/analysis/{get_flops,benchmark,model_zoo}.py and mmattn/utils/complexity.py.

The counts are checked against numbers computed here from the modules' definitions (SE's two
1x1 convs, Non-local's and criss-cross attention's products), not against the tools' own
output. The tools run in-process (their ``main``), on the toy Faster R-CNN at small inputs.
"""
import json
import os
import os.path as osp

import pytest
import torch
from torch import nn

from tests.helpers import has_module, load_tool, requires_mmdet

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_SE = osp.join(ROOT, 'configs', 'toy', 'faster_rcnn_se_r50_toy-coco.py')
TOY_PLAIN = osp.join(ROOT, 'configs', 'toy', 'faster_rcnn_r50_toy-coco.py')
SE_CONFIG = osp.join(ROOT, 'configs', 'faster_rcnn_se_r50_coco.py')


def load_analysis(name):
    return load_tool('analysis', f'{name}.py', name=f'analysis_{name}')


def run_main(tool, argv, capsys):
    """``tool.main(argv)`` -> (return value, stdout, stderr); SystemExit -> (code, out, err)."""
    try:
        result = tool.main(argv)
    except SystemExit as e:
        result = e.code
    out, err = capsys.readouterr()
    return result, out, err


def se_macs(widths, reduction=16):
    """mmengine's count of SE modules: two bias-free-counted 1x1 convs on a 1x1 map each."""
    return sum(2 * c * (c // reduction) for c in widths)


# toy backbone: base_channels=16, so bottleneck outputs 64, 128, 256, 512 in 3/4/6/3 blocks
TOY_WIDTHS = [64] * 3 + [128] * 4 + [256] * 6 + [512] * 3
R50_WIDTHS = [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3


# -- the counter ----------------------------------------------------------------------------------
def test_matmul_handle_counts_broadcast_batches():
    """mmengine's own handle counts P @ x, P (3, 10), x (2, 4, 10, 5), as 3*10*5."""
    from mmengine.analysis import FlopAnalyzer

    from mmattn.utils.complexity import FLOP_HANDLES, analyze_model

    class PoolRows(nn.Module):

        def forward(self, p, x):
            return torch.matmul(p, x)

    p, x = torch.randn(3, 10), torch.randn(2, 4, 10, 5)
    expected = 2 * 4 * 3 * 10 * 5
    assert analyze_model(PoolRows(), (p, x)).flops == expected
    assert FlopAnalyzer(PoolRows(), (p, x)).total() != expected  # the bug being fixed
    # both operands batched, and a matrix-vector product
    a, b = torch.randn(2, 1, 3, 4), torch.randn(5, 4, 6)
    assert analyze_model(PoolRows(), (a, b)).flops == 2 * 5 * 3 * 4 * 6
    assert analyze_model(PoolRows(), (torch.randn(7, 4), torch.randn(4))).flops == 28
    assert set(FLOP_HANDLES) == {'aten::matmul'}


def _traced_with_grad(module, x):
    """FlopAnalyzer on a training-mode module with gradients on: the setting in which the
    fused autograd Functions would run, if tracing did not make them step aside."""
    from mmengine.analysis import FlopAnalyzer

    from mmattn.utils.complexity import FLOP_HANDLES
    module.train()
    analyzer = FlopAnalyzer(module, (x.requires_grad_(), )).set_op_handle(**FLOP_HANDLES)
    analyzer.unsupported_ops_warnings(False).tracer_warnings('none')
    return analyzer.total(), analyzer.unsupported_ops()


@pytest.mark.parametrize('name', ['SE', 'NonLocal', 'DANetPAM', 'CrissCross', 'GatherExcite'])
def test_fused_ops_step_aside_while_traced(name):
    from mmattn import build_attention
    torch.manual_seed(0)
    module = build_attention(name, 32)
    _, uncounted = _traced_with_grad(module, torch.randn(2, 32, 6, 5))
    python_ops = [op for op in uncounted if op.startswith('prim::PythonOp')]
    assert not python_ops, f'{name}: autograd Functions in the traced graph: {python_ops}'


def test_nonlocal_count_is_its_formula():
    """theta, phi, g, out convs (MACs, no bias) + q k^T + attention v, keys max-pooled."""
    from mmattn import build_attention
    n, c, h, w = 2, 32, 6, 8
    inner, length, keys = c // 2, h * w, (h // 2) * (w // 2)
    module = build_attention('NonLocal', c, sub_sample=True, norm_cfg=None)
    flops, uncounted = _traced_with_grad(module, torch.randn(n, c, h, w))
    convs = n * c * inner * (length + 2 * keys) + n * inner * c * length
    products = 2 * n * length * keys * inner
    assert flops == convs + products
    assert 'aten::softmax' in uncounted  # element-wise: listed, not counted


def test_criss_cross_count_is_its_formula():
    """Per pass: q, k (C -> C/8) and v convs, energies over column and row, two outputs."""
    from mmattn import build_attention
    n, c, h, w = 1, 16, 5, 7
    ck = c // 8
    module = build_attention('CrissCross', c, recurrence=2)
    flops, _ = _traced_with_grad(module, torch.randn(n, c, h, w))
    per_pass = (n * h * w * (2 * c * ck + c * c)  # 1x1 convs
                + n * ck * h * w * (h + w)  # energies
                + n * c * h * w * (h + w))  # column and row aggregation
    assert flops == 2 * per_pass


# -- get_flops.py ----------------------------------------------------------------------------
@pytest.fixture(scope='module')
def get_flops():
    return load_analysis('get_flops')


@requires_mmdet
def test_get_flops_params_and_se_share(get_flops, capsys):
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    se, out, _ = run_main(get_flops, [TOY_SE, '--shape', '128', '160'], capsys)
    plain, _, _ = run_main(get_flops, [TOY_PLAIN, '--shape', '128', '160'], capsys)
    assert 'FLOPs:' in out and 'SE x16' in out and 'aten::sigmoid' in out

    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(Config.fromfile(TOY_SE).model)
    assert se['params'] == sum(p.numel() for p in model.parameters())
    assert se['input_shapes'] == [(1, 3, 128, 160)]
    assert plain['flops'] > 0 and plain['attention'] == {}

    counted = se['attention']['SE']
    assert len(counted['instances']) == 16
    assert counted['flops'] == se_macs(TOY_WIDTHS)
    # SE adds exactly its own count: the rest of the detector (proposals included) is equal
    assert se['flops'] - plain['flops'] == counted['flops']
    assert se['params'] - plain['params'] == counted['params']


@requires_mmdet
def test_get_flops_bad_input(get_flops, capsys, tmp_path):
    code, _, err = run_main(get_flops, [str(tmp_path / 'nope.py'), '--shape', '64'], capsys)
    assert code == 2 and 'config file not found' in err and 'nope.py' in err
    code, _, err = run_main(get_flops, [TOY_SE, '--shape', '64', '64', '3'], capsys)
    assert code == 2 and '--shape takes H W' in err and '[64, 64, 3]' in err
    code, _, err = run_main(get_flops, [TOY_SE, '--shape', '0', '64'], capsys)
    assert code == 2 and '--shape' in err
    other = tmp_path / 'other.py'
    other.write_text('model = dict(type="Foo")\n')
    code, _, err = run_main(get_flops, [str(other), '--shape', '64'], capsys)
    assert code == 2 and 'default_scope is None' in err and 'mmdet and mmseg' in err
    # no data where the config says, and no --shape: say which, and how to get past it
    code, _, err = run_main(get_flops, [TOY_SE, '--cfg-options',
                                        f'test_dataloader.dataset.data_root={tmp_path}/'],
                            capsys)
    assert code == 2 and 'make_toy_coco.py' in err and '--shape' in err


# -- benchmark.py ----------------------------------------------------------------------------
@pytest.fixture(scope='module')
def toy_data(tmp_path_factory):
    if not has_module('sklearn'):
        pytest.skip('the toy COCO generator draws scikit-learn\'s digits')
    from tests.test_tools.toy_run import make_toy_coco
    return make_toy_coco(tmp_path_factory.mktemp('toy') / 'toy_coco', num_train=2, num_val=3)


@requires_mmdet
def test_benchmark_toy(toy_data, capsys):
    tool = load_analysis('benchmark')
    root = toy_data.rstrip('/') + '/'
    result, out, _ = run_main(tool, [
        TOY_SE, '--num-images', '2', '--warmup', '1', '--repeat', '2', '--cfg-options',
        f'test_dataloader.dataset.data_root={root}'
    ], capsys)
    assert len(result['runs']) == 2
    for run in result['runs']:
        # images/s is the timed images over their time: at least 1 / the slowest image's
        assert run['images_per_s'] * run['ms_min'] / 1000 <= 1.0 + 1e-9
        assert run['images_per_s'] > 0 and run['ms_median'] >= run['ms_min'] > 0
    assert 'images/s' in out and '2/2' in out  # the result and the progress bar
    assert result['source'] == 'test dataloader' and result['device'].startswith('cpu')
    mem = result['memory']
    assert mem['peak'] >= mem['before'] > 0
    assert 'peak memory' in out and 'MiB' in out


@requires_mmdet
def test_benchmark_bad_input(capsys, tmp_path):
    tool = load_analysis('benchmark')
    code, _, err = run_main(tool, [TOY_SE, '--shape', '64', '--num-images', '0'], capsys)
    assert code == 2 and '--num-images must be at least 1, got 0' in err
    code, _, err = run_main(tool, [TOY_SE, str(tmp_path / 'missing.pth'), '--shape', '64'],
                            capsys)
    assert code == 2 and 'no checkpoint at' in err and 'missing.pth' in err
    if not torch.cuda.is_available():
        code, _, err = run_main(tool, [TOY_SE, '--shape', '64', '--device', 'cuda'], capsys)
        assert code == 2 and 'no GPU' in err


# -- model_zoo.py ------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def zoo():
    return load_analysis('model_zoo')


def _fake_toy_run(root, config, metrics):
    """A work dir as tools/test.py leaves it: the dumped config, <ts>/<ts>.json metrics."""
    from mmengine.config import Config
    work_dir = osp.join(root, 'toy_run')
    os.makedirs(osp.join(work_dir, '20260101_000000'))
    Config.fromfile(config).dump(osp.join(work_dir, osp.basename(config)))
    with open(osp.join(work_dir, '20260101_000000', '20260101_000000.json'), 'w') as f:
        json.dump(metrics, f)


@requires_mmdet
def test_model_zoo_row_for_every_module(zoo, tmp_path, capsys):
    from mmattn.models.factory import attention_classes
    configs = tmp_path / 'configs'
    configs.mkdir()
    (configs / 'faster_rcnn_se_r50_coco.py').write_text(open(SE_CONFIG).read())
    toy_root = str(tmp_path / 'work_dirs')
    _fake_toy_run(toy_root, TOY_SE, {'coco/bbox_mAP': 0.123, 'coco/bbox_mAP_50': 0.456})
    readme = tmp_path / 'README.md'
    readme.write_text('# title\n\nbefore\n\n<!-- model-zoo:start -->\nold table\n'
                      '<!-- model-zoo:end -->\n\nafter\n')
    argv = ['--config-dir', str(configs), '--shape', '64', '96', '--no-classifier',
            '--cache-dir', str(tmp_path / 'cache'), '--toy-work-dirs', toy_root,
            '--update', str(readme)]
    run_main(zoo, argv, capsys)
    text = readme.read_text()
    assert text.startswith('# title\n\nbefore\n\n<!-- model-zoo:start -->\n')
    assert text.endswith('<!-- model-zoo:end -->\n\nafter\n') and 'old table' not in text

    rows = {line.split('|')[1].strip(): line for line in text.splitlines()
            if line.startswith('| `')}
    assert set(rows) == {f'`{name}`' for name in attention_classes()}
    se_row = rows['`SE`']
    assert 'faster_rcnn_se_r50_coco.py' in se_row and 'after conv3, every block of layer1-4' \
        in se_row and '(x16)' in se_row
    assert 'box mAP 0.123' in se_row  # the toy run, matched by placement
    assert '28.09' not in se_row  # ImageNet parameter counts belong to the classifier table
    assert f'{se_macs(R50_WIDTHS) / 1e6:.2f} M' in se_row  # SE's FLOPs at this input
    assert '2.53 M' in se_row  # 2,530,992 parameters
    assert 'no config' in rows['`CBAM`'] and 'not run' not in rows['`CBAM`']
    assert '38.7 box AP (paper; their baseline 37.5)' in rows['`SGE`']  # published.yml

    # a second run reads the cache and writes the same file
    before = text
    run_main(zoo, argv, capsys)
    assert readme.read_text() == before
    assert len(os.listdir(tmp_path / 'cache')) == 2  # the baseline and the SE config


def test_model_zoo_update_markers(zoo, tmp_path):
    from mmattn.utils.complexity import ConfigError
    path = tmp_path / 'R.md'
    path.write_text('text\n')
    zoo.update_file(str(path), 'table')
    assert path.read_text() == 'text\n\n<!-- model-zoo:start -->\ntable\n<!-- model-zoo:end -->\n'
    zoo.update_file(str(path), 'new')
    assert path.read_text() == 'text\n\n<!-- model-zoo:start -->\nnew\n<!-- model-zoo:end -->\n'
    path.write_text('<!-- model-zoo:end -->\n<!-- model-zoo:start -->\n')
    with pytest.raises(ConfigError, match='exactly one'):
        zoo.update_file(str(path), 'x')


def test_published_file_is_well_formed(zoo):
    from mmattn.models.factory import attention_classes
    entries = zoo.load_published(osp.join(ROOT, 'configs', 'model_zoo', 'published.yml'))
    names = set(attention_classes()) | {'plain'}
    assert {e['module'] for e in entries} <= names
    for e in entries:
        assert isinstance(e['value'], (int, float)) and e['ref']


@requires_mmdet
def test_classifier_overhead_of_se(zoo, tmp_path):
    """The README's ResNet-50 table: SE's overhead is its parameters and its convs' MACs."""
    from mmattn.models.backbones import AUTHORS_PLACEMENT
    cache = zoo.Cache(str(tmp_path), enabled=False)
    plain = zoo.classifier_record('plain', None, cache, (64, 64), 'cpu')
    se = zoo.classifier_record('SE', AUTHORS_PLACEMENT['SE'], cache, (64, 64), 'cpu')
    assert plain.params == 25_557_032 and se.params - plain.params == 2_530_992
    assert se.attention['SE']['params'] == 2_530_992
    assert se.flops - plain.flops == se.attention['SE']['flops'] == se_macs(R50_WIDTHS)
