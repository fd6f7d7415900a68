"""A training and a test run print none of the pinned stack's deprecation notices, and a
warning of anything else still shows (the filters: mmattn/utils/noise.py)."""
import os
import sys

from tests.helpers import requires_mmdet
from tests.test_tools.toy_run import ROOT, make_toy_coco, run_tool, write_config

NOTICES = ('pkg_resources is deprecated', '"FileClient" will be deprecated',
           '"HardDiskBackend" is the alias', '`broadcast_buffers` is deprecated')
OTHER = 'noisy_probe: a warning that is not ours to hide'


@requires_mmdet
def test_train_and_test_print_no_pinned_notices(tmp_path):
    data = make_toy_coco(tmp_path / 'data', num_train=2, num_val=1)
    (tmp_path / 'noisy_probe.py').write_text(
        f'import warnings\nwarnings.warn({OTHER!r}, UserWarning)\n')
    cfg = write_config(tmp_path / 'cfg.py', data, max_epochs=1)
    with open(cfg, 'a') as f:  # a config that imports a module which warns
        f.write("custom_imports = dict(imports=['mmattn', 'tests.test_tools.probe_hooks', "
                "'noisy_probe'], allow_failed_imports=False)\n")
    env = dict(PYTHONPATH=os.pathsep.join([ROOT, str(tmp_path)]), OMP_NUM_THREADS='1')
    work = tmp_path / 'work'
    runs = [run_tool([sys.executable, 'tools/train.py', cfg, '--work-dir', str(work)], env),
            run_tool([sys.executable, 'tools/test.py', cfg, str(work / 'epoch_1.pth'),
                      '--work-dir', str(work)], env)]
    for proc in runs:
        out = proc.stdout + proc.stderr
        assert OTHER in out, out[-3000:]
        # the run got as far as the code that raised them: a checkpoint saved, metrics printed
        assert ('Saving checkpoint' in out) or ('metrics:' in out), out[-3000:]
        for notice in NOTICES:
            assert notice not in out, (notice, out[-3000:])
