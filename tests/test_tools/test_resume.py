"""An interrupted run resumes from its saved iteration, weights and optimizer state, and a run
killed at any iteration ends, resumed, with the weights and the metrics of a run that was not."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import mmattn  # noqa: F401  (allow-lists mmengine's checkpoint types)
from tests.helpers import has_module, load_tool, requires_mmdet, requires_mmseg
from tests.test_tools.probe_hooks import tensor_digest
from tests.test_tools.toy_run import ROOT, make_toy_coco, run_tool, write_config


@requires_mmdet
def test_interrupted_run_resumes(tmp_path):
    data = make_toy_coco(tmp_path / 'data', num_train=4, num_val=2)
    work = tmp_path / 'work'
    train = [sys.executable, f'{ROOT}/tools/train.py']

    # Run 1 is stopped after epoch 2 of 3, after its checkpoint was written.
    cfg1 = write_config(tmp_path / 'cfg1.py', data, max_epochs=3, probe=2)
    proc = run_tool(train + [cfg1, '--work-dir', str(work)], check=False)
    assert proc.returncode != 0 and 'interrupted after epoch 2' in proc.stderr
    first = json.load(open(work / 'probe_rank0.json'))
    assert (work / 'epoch_2.pth').exists() and not (work / 'epoch_3.pth').exists()

    # The checkpoint loads under torch's safe loader (weights_only is torch's default).
    ckpt = torch.load(work / 'epoch_2.pth', map_location='cpu')
    assert ckpt['meta']['epoch'] == 2 and ckpt['meta']['iter'] == first['end']['iter']
    assert tensor_digest(sorted(ckpt['state_dict'].items())) == first['end']['state']

    # Starting again without --resume would overwrite the checkpoints: refused.
    cfg2 = write_config(tmp_path / 'cfg2.py', data, max_epochs=3)
    proc = run_tool(train + [cfg2, '--work-dir', str(work)], check=False)
    assert proc.returncode == 2 and 'already holds checkpoints' in proc.stderr

    run_tool(train + [cfg2, '--work-dir', str(work), '--resume'])
    second = json.load(open(work / 'probe_rank0.json'))
    start = second['start']
    assert start['epoch'] == 2 and start['iter'] == first['end']['iter']
    assert start['state'] == first['end']['state']
    state = ckpt['optimizer']['state']
    assert start['optim_steps'] == len(state) > 0
    assert start['optim'] == tensor_digest([(f'{k}.{n}', v) for k in sorted(state)
                                            for n, v in sorted(state[k].items())
                                            if isinstance(v, torch.Tensor)])
    assert second['end']['epoch'] == 3 and (work / 'epoch_3.pth').exists()


# -- exact resume: a run killed at a random iteration ends as the run that was not ----------------

SEG_CONFIG = f'{ROOT}/configs/toy/danet_r18-d8_toy-cityscapes.py'
DET_CONFIG = f'{ROOT}/configs/toy/faster_rcnn_se_r50_toy-coco.py'
needs_toy = pytest.mark.skipif(not has_module('sklearn'),
                               reason='the toy data generators draw scikit-learn\'s images')
# what mmengine logs that is not a result of the run: clocks and memory
UNTIMED = ('time', 'data_time', 'eta', 'memory')


def detector_config(path, data):
    """The toy SE detector: 2 epochs of 3 iterations, validated after each, a checkpoint after
    every iteration (the resume point can be anywhere) and one at the end of each epoch."""
    root = str(data).rstrip('/') + '/'
    path.write_text(f"""_base_ = {DET_CONFIG!r}
train_dataloader = dict(batch_size=2, dataset=dict(data_root={root!r}))
val_dataloader = dict(dataset=dict(data_root={root!r}))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file={root + 'annotations/instances_val2017.json'!r})
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=2, val_interval=1)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=1, max_keep_ckpts=-1),
                     logger=dict(interval=1))
custom_hooks = [dict(type='CheckpointHook', by_epoch=True, interval=1)]
""")
    return str(path)


def segmentor_config(path, data):
    """The toy DANet (iteration-based, random crops, flips and colour changes): 6 iterations,
    validated after 3 and 6, a checkpoint after every iteration and one after each
    validation."""
    path.write_text(f"""_base_ = {SEG_CONFIG!r}
train_dataloader = dict(batch_size=2, dataset=dict(data_root={str(data)!r}))
val_dataloader = dict(batch_size=2, dataset=dict(data_root={str(data)!r}))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=6, val_interval=3)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=1, max_keep_ckpts=-1),
                     logger=dict(interval=1))
custom_imports = dict(imports=['mmattn', 'tests.test_tools.eval_probe'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='ValCheckpointHook')]
""")
    return str(path)


def train_cmd(cfg, work, *extra):
    return [sys.executable, f'{ROOT}/tools/train.py', cfg, '--work-dir', str(work), *extra]


ENV = dict(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')


def run_and_kill(cfg, work, at, timeout=600):
    """Start a training process and kill it (SIGKILL: no handler runs) as soon as the
    checkpoint of iteration ``at`` appears: it may be half written, and its successor may be
    under way."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''),
               **ENV)
    proc = subprocess.Popen(train_cmd(cfg, work), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target, start = Path(work) / f'iter_{at}.pth', time.time()
    try:
        while not target.exists():
            assert proc.poll() is None, f'the run ended ({proc.returncode}) before iter {at}'
            assert time.time() - start < timeout, 'the run took too long'
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def logged(work):
    """What each run logged in work/*/vis_data/scalars.json, newest run last: per (kind,
    step) the values that do not depend on clocks."""
    runs = []
    for log in sorted(Path(work).glob('*/vis_data/scalars.json')):
        records = {}
        for line in log.read_text().splitlines():
            record = json.loads(line)
            kind = 'train' if 'loss' in record else 'val'
            records[(kind, record['step'])] = {k: v for k, v in record.items()
                                               if k not in UNTIMED}
        runs.append(records)
    return runs


def assert_same_end(reference, resumed, last):
    a = torch.load(Path(reference) / last, map_location='cpu')
    b = torch.load(Path(resumed) / last, map_location='cpu')
    assert a['meta']['iter'] == b['meta']['iter'] and a['meta']['epoch'] == b['meta']['epoch']
    assert list(a['state_dict']) == list(b['state_dict'])
    differ = [k for k in a['state_dict'] if not torch.equal(a['state_dict'][k],
                                                            b['state_dict'][k])]
    assert not differ, f'{len(differ)} tensors differ, e.g. {differ[:3]}'
    for k, state in a['optimizer']['state'].items():
        for name, value in state.items():
            assert torch.equal(value, b['optimizer']['state'][k][name]), (k, name)
    # the losses, learning rates and metrics the resumed run logged are the reference's
    expected = logged(reference)[-1]
    resumed_logs = logged(resumed)[-1]
    assert resumed_logs, 'the resumed run logged nothing'
    for key, values in resumed_logs.items():
        assert values == expected[key], (key, values, expected[key])
    assert ('val', max(s for k, s in expected if k == 'val')) in resumed_logs


def resume_from(cfg, reference, checkpoint, work):
    """Resume from a copy of one of the reference run's checkpoints, in a new work dir."""
    work.mkdir()
    (work / checkpoint).write_bytes((Path(reference) / checkpoint).read_bytes())
    run_tool(train_cmd(cfg, work, '--resume', str(work / checkpoint)), ENV)


@requires_mmdet
@needs_toy
def test_killed_detector_resumes_exactly(tmp_path):
    data = make_toy_coco(tmp_path / 'data', num_train=6, num_val=2)
    cfg = detector_config(tmp_path / 'cfg.py', data)
    reference = tmp_path / 'reference'
    run_tool(train_cmd(cfg, reference), ENV)

    # killed at a random iteration of the 6, then resumed from what it left
    at = random.Random().randint(1, 5)
    work = tmp_path / 'killed'
    run_and_kill(cfg, work, at)
    run_tool(train_cmd(cfg, work, '--resume'), ENV)
    assert_same_end(reference, work, 'iter_6.pth'), f'killed at iteration {at}'

    # the resume points at the end of an epoch, whatever the draw above: after its last
    # iteration (the epoch's end and its validation to come), and the checkpoint the epoch's
    # end wrote (the validation after it to come)
    for checkpoint in ('iter_3.pth', 'epoch_1.pth'):
        work = tmp_path / checkpoint.replace('.pth', '')
        resume_from(cfg, reference, checkpoint, work)
        assert_same_end(reference, work, 'iter_6.pth')


@requires_mmseg
@needs_toy
def test_killed_segmentor_resumes_exactly(tmp_path):
    gen = load_tool('dataset_converters', 'make_toy_cityscapes.py')
    data = tmp_path / 'city'
    gen.generate(str(data), num_train=4, num_val=2, height=64, width=128)
    cfg = segmentor_config(tmp_path / 'cfg.py', data)
    reference = tmp_path / 'reference'
    run_tool(train_cmd(cfg, reference), ENV)

    at = random.Random().randint(1, 5)
    work = tmp_path / 'killed'
    run_and_kill(cfg, work, at)
    run_tool(train_cmd(cfg, work, '--resume'), ENV)
    assert_same_end(reference, work, 'iter_6.pth'), f'killed at iteration {at}'

    # the checkpoint written just before a validation, and the one written during it
    for checkpoint in ('iter_3.pth', 'val_iter_3.pth'):
        work = tmp_path / checkpoint.replace('.pth', '')
        resume_from(cfg, reference, checkpoint, work)
        assert_same_end(reference, work, 'iter_6.pth')


def test_train_py_makes_mmengines_loops_resumable():
    from mmengine.config import Config
    train = load_tool('train.py', name='train_tool')
    for given, expected in ((dict(type='EpochBasedTrainLoop', max_epochs=2),
                             dict(type='mmattn.EpochBasedTrainLoop', max_epochs=2)),
                            (dict(by_epoch=True, max_epochs=2),
                             dict(type='mmattn.EpochBasedTrainLoop', max_epochs=2)),
                            (dict(type='mmengine.IterBasedTrainLoop', max_iters=9),
                             dict(type='mmattn.IterBasedTrainLoop', max_iters=9)),
                            (dict(by_epoch=False, max_iters=9),
                             dict(type='mmattn.IterBasedTrainLoop', max_iters=9)),
                            (dict(type='MyLoop', max_iters=9), dict(type='MyLoop', max_iters=9))):
        cfg = Config(dict(train_cfg=given))
        train.make_resumable(cfg)
        train.make_resumable(cfg)
        assert cfg.train_cfg == expected
        assert cfg.custom_hooks == [dict(type='mmattn.ResumeStateHook')]
