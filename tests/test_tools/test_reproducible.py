"""With one thread and a fixed seed, two trainings end with the same weights, bit for bit.

The documented toy figures rest on this. Another thread count splits float sums differently
and gives other, equally valid, weights; this test fixes it to one as tools/quickstart.sh does.
"""
import json
import sys

from tests.helpers import requires_mmdet
from tests.test_tools.toy_run import make_toy_coco, run_tool, write_config


@requires_mmdet
def test_two_runs_end_with_identical_weights(tmp_path):
    data = make_toy_coco(tmp_path / 'data', num_train=4, num_val=1)
    cfg = write_config(tmp_path / 'cfg.py', data, max_epochs=2)  # 2 epochs of 2 iterations
    ends = []
    for run in ('a', 'b'):
        work = tmp_path / run
        run_tool([sys.executable, 'tools/train.py', cfg, '--work-dir', str(work)],
                 env_extra=dict(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1'))
        record = json.load(open(work / 'probe_rank0.json'))
        assert record['end']['iter'] == 4
        assert record['end']['params'] != record['start']['params'], 'nothing was trained'
        ends.append((record['seen'], record['start']['state'], record['end']['state']))
    assert ends[0] == ends[1]
