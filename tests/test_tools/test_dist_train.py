"""tools/dist_train.sh with 2 CPU processes: data is sharded and the replicas end identical."""
import json
import os.path as osp

from tests.helpers import requires_mmdet
from tests.test_tools.toy_run import ROOT, make_toy_coco, run_tool, write_config


@requires_mmdet
def test_dist_train_two_cpu_processes(tmp_path):
    data = make_toy_coco(tmp_path / 'data', num_train=8, num_val=2)
    cfg = write_config(tmp_path / 'cfg.py', data, max_epochs=1)
    work = tmp_path / 'work'
    port = str(29500 + (hash(str(tmp_path)) % 2000))
    proc = run_tool(['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), cfg, '2', '--work-dir',
                     str(work)], env_extra=dict(PORT=port))
    # torch's notice about mmengine's broadcast_buffers=False, once per process, is silenced
    assert '`broadcast_buffers` is deprecated' not in proc.stdout + proc.stderr
    r0 = json.load(open(work / 'probe_rank0.json'))
    r1 = json.load(open(work / 'probe_rank1.json'))
    # 8 images, 2 processes, batch 2: each process sees 4 distinct images, together all 8.
    assert len(r0['seen']) == len(r1['seen']) == 4
    assert not set(r0['seen']) & set(r1['seen']), 'both processes trained on the same images'
    assert len(set(r0['seen']) | set(r1['seen'])) == 8
    # DDP keeps the replicas in step: same weights at the start and at the end. (Batch-norm
    # running statistics are buffers each process keeps for its own shard, as in mmdet.)
    assert r0['start']['params'] == r1['start']['params']
    assert r0['end']['params'] == r1['end']['params']
    assert r0['end']['params'] != r0['start']['params'], 'the weights did not change'
    assert (work / 'epoch_1.pth').exists()
