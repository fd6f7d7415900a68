"""Shared set-up of the tests that train: tiny toy data and a fast toy config."""
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = osp.join(ROOT, 'configs', 'toy', 'faster_rcnn_se_r50_toy-coco.py')


def make_toy_coco(out, num_train=8, num_val=4):
    subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'dataset_converters',
                                             'make_toy_coco.py'), '--out', str(out),
                    '--num-train', str(num_train), '--num-val', str(num_val)],
                   check=True, cwd=ROOT, capture_output=True)
    return str(out)


def write_config(path, data_root, max_epochs, probe=None):
    """A config that trains the toy config for a few iterations on the tiny data."""
    root = data_root.rstrip('/') + '/'
    text = f"""_base_ = {TOY_CONFIG!r}
custom_imports = dict(imports=['mmattn', 'tests.test_tools.probe_hooks'],
                      allow_failed_imports=False)
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root={root!r}))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root={root!r}))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file={root + 'annotations/instances_val2017.json'!r})
test_evaluator = val_evaluator
train_cfg = dict(max_epochs={max_epochs}, val_interval={max_epochs + 1})
default_hooks = dict(checkpoint=dict(interval=1), logger=dict(interval=1))
randomness = dict(seed=0)
custom_hooks = [dict(type='ProbeHook', interrupt_after_epoch={probe!r})]
"""
    with open(path, 'w') as f:
        f.write(text)
    return str(path)


def run_tool(args, env_extra=None, check=True, timeout=900):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    env.update(env_extra or {})
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n'
                             f'{proc.stderr[-5000:]}')
    return proc
