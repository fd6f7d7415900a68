"""The benchmarks' GPU options, the whole-model benchmark and the GPU suite, tested on the CPU.

- ``--device``/``--amp`` parse in every tool, the CPU stays the default, and ``--device cuda``
  is refused by name where torch has no CUDA device;
- the shared pieces work: the peak-memory reader (CPU; CUDA where there is one), autocast;
- context_memory's and seg_heads' workers run on the CPU in float32 and under bf16 autocast
  and their outputs agree with the references they are compared with;
- ``model_step.py`` runs two training steps of a toy config and prints its table;
- ``--plain`` times the model again with the fast paths switched off, after checking that its
  losses (or features) equal ours in float64; a perturbed model is caught;
- ``gpu_suite.sh`` lists every benchmark it runs, and its CPU mode runs a step.
"""
import json
import os
import os.path as osp
import signal
import subprocess
import sys

import pytest
import torch

from mmattn.models.factory import build_attention
from tests.helpers import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BENCH_DIR = osp.join(ROOT, 'tools', 'benchmarks')
TOY_DET = 'configs/toy/faster_rcnn_cbam-nonlocal_r50_toy-coco.py'
TOY_SEG = 'configs/toy/danet_r18-d8_toy-cityscapes.py'


bench_utils = load_tool('benchmarks', 'bench_utils.py')
module_speed = load_tool('benchmarks', 'module_speed.py')
context_memory = load_tool('benchmarks', 'context_memory.py')
seg_heads = load_tool('benchmarks', 'seg_heads.py')
model_step = load_tool('benchmarks', 'model_step.py')


@pytest.fixture(autouse=True)
def _in_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the configs are given relative to the repository


# -- options ----------------------------------------------------------------------------------
def test_device_and_amp_flags_parse():
    for parse, extra in [(module_speed.parse_args, []), (seg_heads.parse_args, []),
                         (context_memory.parse_args, []),
                         (model_step.parse_args, [TOY_SEG])]:
        default = parse(extra)
        assert (default.device, default.amp) == ('cpu', None), parse
        args = parse(extra + ['--device', 'cuda', '--amp', 'bf16'])
        assert (args.device, args.amp) == ('cuda', 'bf16'), parse
        with pytest.raises(SystemExit):
            parse(extra + ['--amp', 'fp8'])
    # full-size warm-up steps only where the first steps of a GPU would be slow
    assert context_memory.parse_args([]).warmup == 0
    assert context_memory.parse_args(['--device', 'cuda']).warmup == 2
    assert seg_heads.parse_args(['--device', 'cuda']).warmup == 2
    args = context_memory.parse_args(['--train-shapes', '2x512x64x128', '1x512x128x256',
                                      '--eval-shapes'])
    assert args.train_shapes == [[2, 512, 64, 128], [1, 512, 128, 256]]
    assert args.eval_shapes == []
    with pytest.raises(SystemExit):
        context_memory.parse_args(['--train-shapes', '2x512x64'])
    args = model_step.parse_args([TOY_DET, '--plain', '--batch', '2', '--shape', '800', '1344',
                                  '--cfg-options', 'model.backbone.frozen_stages=-1'])
    assert args.plain and args.shape == [800, 1344]
    assert args.cfg_options == {'model.backbone.frozen_stages': -1}
    with pytest.raises(SystemExit):
        model_step.parse_args([TOY_DET, '--steps', '0'])


def test_detector_under_cpu_autocast_refused_by_name():
    with pytest.raises(SystemExit, match="model_step: --amp bf16 on the CPU .* mmcv's CPU NMS"):
        model_step.main([TOY_DET, '--amp', 'bf16'])


@pytest.mark.skipif(torch.cuda.is_available(), reason='tests the refusal without CUDA')
def test_cuda_refused_by_name_without_cuda():
    with pytest.raises(SystemExit, match='model_step: --device cuda'):
        model_step.main([TOY_SEG, '--device', 'cuda'])


def test_autocast_selects_the_dtype():
    a = torch.randn(4, 4)
    with bench_utils.autocast('cpu', 'bf16'):
        assert torch.mm(a, a).dtype == torch.bfloat16
    with bench_utils.autocast('cpu', None):
        assert torch.mm(a, a).dtype == torch.float32
    assert bench_utils.amp_dtype('fp16') == torch.float16
    assert 'device: cpu' in bench_utils.env_line('cpu', 'bf16')
    assert 'autocast torch.bfloat16' in bench_utils.env_line('cpu', 'bf16')


# A fresh process: in pytest's, memory freed by earlier tests stays resident in the allocator's
# free lists, so a new tensor can reuse it without raising the resident high-water mark.
_PEAK_PROBE = """
import sys, torch
from mmattn.utils.memory import peak_bytes, reset_peak
if reset_peak('cpu') is not None:
    print('refused'); sys.exit(0)
base = peak_bytes('cpu')
x = torch.ones(64 * 2**20 // 4)  # 64 MiB, written
print(peak_bytes('cpu') - base)
"""


def test_peak_memory_reader_cpu():
    proc = subprocess.run([sys.executable, '-c', _PEAK_PROBE], capture_output=True, text=True,
                          cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.strip().splitlines()[-1]
    if out == 'refused':
        pytest.skip('the kernel refuses to reset VmHWM here')
    grown = int(out)
    assert 60 * 2**20 <= grown < 200 * 2**20, grown


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_peak_memory_reader_cuda():
    from mmattn.utils.memory import peak_bytes, reset_peak
    x = torch.ones(16 * 2**20 // 4, device='cuda')
    del x
    assert reset_peak('cuda') is None
    base = peak_bytes('cuda')
    y = torch.ones(32 * 2**20 // 4, device='cuda')
    assert peak_bytes('cuda') - base == 32 * 2**20
    del y


def test_module_speed_prints_what_it_measured_when_stopped(monkeypatch, capsys):
    """A time limit (SIGTERM) still gets the tables of the modules measured so far."""
    calls, handler = [], signal.getsignal(signal.SIGTERM)

    def fake_run_module(ctx, module, args):
        calls.append(module)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        t = dict(min_ms=1.0, median_ms=1.0, n=3)
        return [dict(module=module, impl='mmattn', fwd=t, fwd_bwd=t, peak_mib=1.0,
                     **{'pass': t})]

    monkeypatch.setattr(module_speed, 'run_module', fake_run_module)
    monkeypatch.setattr(module_speed, '_worker_context', lambda: None)
    rc = module_speed.main(['--modules', 'SE', 'ECA', 'CBAM'])
    out = capsys.readouterr().out
    assert rc == 1 and calls == ['SE', 'ECA']
    assert '| SE | mmattn |' in out and '| ECA |' not in out
    assert 'INTERRUPTED' in out and 'not measured: ECA, CBAM' in out
    assert signal.getsignal(signal.SIGTERM) is handler


def test_context_memory_prints_what_it_measured_when_stopped(monkeypatch, capsys):
    calls = []

    def fake_run_cases(impl, cases, args):
        calls.append(impl)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        for _, shape, path in cases:
            torch.save(torch.ones(shape), path)
        return [dict(peak_bytes=2**20, seconds=[0.5, 0.25])] * len(cases)

    monkeypatch.setattr(context_memory, 'run_cases', fake_run_cases)
    rc = context_memory.main(['--families', 'PAM', '--channels', '8', '--train-shapes',
                              '1x8x4x4', '--eval-shapes'])
    out = capsys.readouterr().out
    assert rc == 1 and len(calls) == 2
    assert 'mmattn DANetPAM (lean)' in out and '0.25/0.50' in out
    assert out.count('not run: interrupted') == 2 and 'INTERRUPTED' in out


# -- context_memory and seg_heads workers on the CPU --------------------------------------------
@pytest.mark.parametrize('amp', [None, 'bf16'])
def test_context_memory_worker(tmp_path, amp):
    outs = {}
    for impl in ('mmattn DANetPAM (lean)', 'mmseg PAM'):
        path = str(tmp_path / f'{len(outs)}.pt')
        argv = ['--worker', '--impl', impl, '--channels', '16', '--repeat', '2', '--cases',
                json.dumps([['train', [1, 16, 6, 10], path]])]
        # a fresh process, as the tool runs its workers (see test_peak_memory_reader_cpu)
        proc = subprocess.run(
            [sys.executable, osp.join(BENCH_DIR, 'context_memory.py')] + argv
            + (['--amp', amp] if amp else []), capture_output=True, text=True, cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=ROOT), timeout=300)
        assert proc.returncode == 0, proc.stderr
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        assert len(res) == 1 and len(res[0]['seconds']) == 2, res
        assert res[0]['peak_bytes'] >= 0
        outs[impl] = torch.load(path)
        assert outs[impl].shape == (1, 16, 6, 10) and outs[impl].dtype == torch.float32
    lean, ref = outs.values()
    tol = context_memory.AMP_TOLERANCE[amp] if amp else context_memory.TOLERANCE
    assert bench_utils.rel_diff(ref, lean) < tol
    assert lean.abs().max() > 0.1  # the attention branch is there, not zero


def test_seg_heads_worker(tmp_path, capsys):
    outs = []
    for impl in ('ours', 'mmseg'):
        path = str(tmp_path / f'{impl}.pt')
        seg_heads.main(['--worker', '--impl', impl, '--out', path, '--in-channels', '32',
                        '--channels', '16', '--pam-channels', '4', '--feat-size', '6', '10',
                        '--repeat', '2', '--threads', '1'])
        res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert len(res['seconds']) == 2
        outs.append(torch.load(path))
    assert outs[0].shape == (1, 19, 48, 80)
    assert bench_utils.rel_diff(outs[0], outs[1]) < seg_heads.TOLERANCE


# -- model_step ---------------------------------------------------------------------------------
def test_model_step_two_steps_prints_table(tmp_path, capsys):
    out = tmp_path / 'step.json'
    rc = model_step.main(['configs/toy/faster_rcnn_r50_toy-coco.py', '--shape', '64', '64',
                          '--batch', '1', '--steps', '2', '--warmup', '1', '--threads', '1',
                          '--json', str(out)])
    assert rc == 0
    table = capsys.readouterr().out
    assert 'device: cpu' in table and '| ours (as configured) |' in table
    data = json.loads(out.read_text())
    (row, ) = data['rows']
    assert row['n'] == 2 and 0 < row['min_ms'] <= row['median_ms']
    assert {'loss_rpn_cls', 'loss_cls', 'loss_bbox'} <= set(row['losses'])


def test_plain_check_on_detector():
    """CBAM and Non-local (with sub-sampling) in a toy Faster R-CNN: the backbone and neck
    features with the fast paths off equal ours in float64 (mmcv's NMS refuses float64, so the
    loss cannot run there), and a weight off by 0.1% is caught."""
    from mmattn.models.context import NonLocal
    from mmattn.models.layers import fast_paths
    cfg = model_step.load_config(TOY_DET)
    model = model_step.build_model(cfg)
    data = model_step.synthetic_batch(cfg, 1, (64, 64))
    ours = model_step.float64_outputs(model, data)
    assert ours[0].startswith('features')
    names = [n for _, n in bench_utils.attention_modules(model)]
    assert {n: names.count(n) for n in set(names)} == {'CBAM': 16, 'NonLocal': 4}
    with fast_paths(False):
        plain = model_step.float64_outputs(model, data)
    assert model_step.compare_outputs(ours, plain) < model_step.F64_TOLERANCE
    nonlocal_block = next(m for m in model.modules() if isinstance(m, NonLocal))
    with torch.no_grad():
        nonlocal_block.conv_out.weight.mul_(1.001)
    with fast_paths(False):
        perturbed = model_step.float64_outputs(model, data)
    assert model_step.compare_outputs(ours, perturbed) > 1e-7


def test_model_step_plain_on_danet(tmp_path, capsys):
    """One command times ours and the plain formula and checks their float64 losses."""
    out = tmp_path / 'danet.json'
    rc = model_step.main([TOY_SEG, '--plain', '--shape', '32', '64', '--batch', '1',
                          '--steps', '2', '--warmup', '1', '--threads', '1', '--json', str(out)])
    assert rc == 0
    table = capsys.readouterr().out
    assert '| plain formula (fast paths off) |' in table and 'DANetPAM x1' in table
    data = json.loads(out.read_text())
    assert [r['model'] for r in data['rows']] == ['ours (as configured)',
                                                  'plain formula (fast paths off)']
    check = data['check']
    assert check['compared'] == 'losses'
    assert check['modules'] == {'DANetCAM': 1, 'DANetPAM': 1}
    assert check['max_rel_diff'] < model_step.F64_TOLERANCE


def test_attention_modules_lists_the_outermost():
    model = torch.nn.Sequential(build_attention('SE', 8), torch.nn.Sequential(
        build_attention('ECA', 8)), torch.nn.Conv2d(8, 8, 1))
    assert bench_utils.attention_modules(model) == [('0', 'SE'), ('1.0', 'ECA')]


# -- gpu_suite.sh -------------------------------------------------------------------------------
def test_gpu_suite_lists_every_benchmark():
    proc = subprocess.run(['bash', osp.join(BENCH_DIR, 'gpu_suite.sh'), '--dry'],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    steps = {line[1:line.index(',')]: line for line in proc.stdout.splitlines()}
    for prec in ('fp32', 'amp'):
        for name in ('module_speed', 'context_memory', 'seg_heads', 'model_step_danet_ours',
                     'model_step_danet_mmseg'):
            assert f'{name}_{prec}' in steps, sorted(steps)
        for variant in ('r50', 'se', 'cbam', 'nonlocal', 'gc', 'simam'):
            line = steps[f'model_step_faster_rcnn_{variant}_{prec}']
            assert '--shape 800 1344 --batch 2' in line and '--device cuda' in line
            assert ('--amp fp16' in line) == (prec == 'amp')
    # on a GPU the switch changes nothing: the references replace the plain row
    assert not any('--plain' in line or ' plain ' in line for line in steps.values())
    assert '--shape 8 256 56 56' in steps['module_speed_fp32']
    assert '--impls mmattn timm mmcv mmseg' in steps['module_speed_fp32']
    assert '--amp bf16' in steps['module_speed_amp'] and '--amp bf16' in steps['seg_heads_amp']
    assert '--train-shapes 2x512x64x128 1x512x128x256' in steps['context_memory_amp']
    assert '--shape 512 1024' in steps['model_step_danet_ours_fp32']
    assert 'model.decode_head.type=DAHead' in steps['model_step_danet_mmseg_amp']
    assert 'tests/test_models -k cuda' in steps['cuda_tests']
    assert len(steps) == 2 * 11 + 1, sorted(steps)
    for line in proc.stdout.splitlines():  # every config named exists
        for word in line.split():
            if word.startswith('configs/'):
                assert osp.exists(osp.join(ROOT, word)), word
    cpu = subprocess.run(['bash', osp.join(BENCH_DIR, 'gpu_suite.sh'), '--cpu', '--dry'],
                         capture_output=True, text=True, timeout=60)
    assert cpu.returncode == 0, cpu.stderr
    cpu_steps = {line[1:line.index(',')]: line for line in cpu.stdout.splitlines()}
    assert '--impls mmattn plain mmcv' in cpu_steps['module_speed_fp32']
    assert '--plain' in cpu_steps['model_step_danet_ours_fp32']
    assert '--plain' not in cpu_steps['model_step_faster_rcnn_r50_fp32']


def test_gpu_suite_cpu_mode_runs(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1')
    proc = subprocess.run(['bash', osp.join(BENCH_DIR, 'gpu_suite.sh'), '--cpu', '--only',
                           '^model_step_danet_mmseg_fp32$', str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = (tmp_path / 'summary.md').read_text()
    assert '| model_step_danet_mmseg_fp32 | 0 |' in summary, summary
    tables = (tmp_path / 'tables.md').read_text()
    assert '| ours (as configured) |' in tables and 'device: cpu' in tables
    assert json.loads((tmp_path / 'model_step_danet_mmseg_fp32.json').read_text())['rows']
