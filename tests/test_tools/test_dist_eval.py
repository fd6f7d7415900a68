"""One checkpoint, one score: validation inside tools/dist_train.sh 2 (2 CPU processes, gloo),
tools/test.py and tools/dist_test.sh 2 predict the same for every image and report the same
metrics.

mmengine wraps the model with ``broadcast_buffers=False``, so each training process keeps the
batch-norm running statistics of its own share of the data, and only the main process's reach
the checkpoint. Validation scores each process's share of the images with that process's
model; mmattn.BroadcastBuffersHook gives every process the main process's buffers first.
"""
import json
import os.path as osp
import socket
import sys

import pytest

from tests.helpers import has_module, load_tool, requires_mmseg
from tests.test_tools.toy_run import ROOT, run_tool

CITY_CONFIG = osp.join(ROOT, 'configs', 'toy', 'danet_r18-d8_toy-cityscapes.py')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def predictions(work, mode, ranks):
    seen, metrics = {}, []
    for rank in range(ranks):
        with open(osp.join(work, f'{mode}_rank{rank}.json')) as f:
            record = json.load(f)
        metrics.append(record['metrics'])
        for image, values in record['seen'].items():
            # a process may also score the image its sampler repeats to fill its last batch
            seen.setdefault(image, []).append(values)
    return seen, metrics


@requires_mmseg
@pytest.mark.skipif(not has_module('sklearn'), reason='the toy data draws scikit-learn digits')
def test_validation_in_dist_train_scores_the_saved_checkpoint(tmp_path):
    gen = load_tool('dataset_converters', 'make_toy_cityscapes.py')
    data = str(tmp_path / 'city')
    # 3 validation frames: process 1 scores frame 1 (and frame 0 again, to fill its batch)
    gen.generate(data, num_train=4, num_val=3, height=64, width=128)
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(f"""_base_ = {CITY_CONFIG!r}
custom_imports = dict(imports=['mmattn', 'tests.test_tools.eval_probe'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='EvalProbe')]
train_dataloader = dict(batch_size=2, dataset=dict(data_root={data!r}))
val_dataloader = dict(batch_size=2, dataset=dict(data_root={data!r}))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=4, val_interval=4)
default_hooks = dict(checkpoint=dict(interval=4), logger=dict(interval=1))
""")
    env = dict(OMP_NUM_THREADS='1')
    train, test = osp.join(ROOT, 'tools', 'dist_train.sh'), osp.join(ROOT, 'tools', 'dist_test.sh')
    run_tool(['bash', train, str(cfg), '2', '--work-dir', str(tmp_path / 'train')],
             dict(env, PORT=free_port()), timeout=600)
    ckpt = str(tmp_path / 'train' / 'iter_4.pth')
    run_tool([sys.executable, osp.join(ROOT, 'tools', 'test.py'), str(cfg), ckpt,
              '--work-dir', str(tmp_path / 'test')], env, timeout=600)
    run_tool(['bash', test, str(cfg), ckpt, '2', '--work-dir', str(tmp_path / 'dist_test')],
             dict(env, PORT=free_port()), timeout=600)

    val, val_metrics = predictions(tmp_path / 'train', 'val', 2)
    single, single_metrics = predictions(tmp_path / 'test', 'test', 1)
    dist, dist_metrics = predictions(tmp_path / 'dist_test', 'test', 2)
    assert sorted(val) == sorted(single) == sorted(dist) and len(single) == 3
    for image, [expected] in single.items():
        # one image, one prediction, in every process that scored it; batches of other
        # images around it change the float sums in the last bits only
        for got in val[image] + dist[image]:
            assert got == pytest.approx(expected, rel=1e-6), (image, got, expected)
    # every process reports the metrics of all images, collected in the dataset's order
    assert val_metrics[0] == val_metrics[1] == single_metrics[0] == dist_metrics[0] \
        == dist_metrics[1]
