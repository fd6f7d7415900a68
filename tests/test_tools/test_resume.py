"""An interrupted run resumes from its saved iteration, weights and optimizer state."""
import json

import torch

import mmattn  # noqa: F401  (allow-lists mmengine's checkpoint types)
from tests.helpers import requires_mmdet
from tests.test_tools.probe_hooks import tensor_digest
from tests.test_tools.toy_run import ROOT, make_toy_coco, run_tool, write_config


@requires_mmdet
def test_interrupted_run_resumes(tmp_path):
    import sys
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
