"""tools/test.py and tools/train.py --resume check their checkpoint before anything is written:
a file that is not a whole checkpoint is refused in one line (never with the advice to load it
unsafely), and a checkpoint whose keys do not fit the config's model is refused with the share
of missing and unexpected keys and a few of them."""
import sys

import pytest
import torch

import mmattn  # noqa: F401
from tests.helpers import has_module, load_tool, requires_mmdet
from tests.test_tools.toy_run import ROOT, run_tool

SE_CONFIG = f'{ROOT}/configs/toy/faster_rcnn_se_r50_toy-coco.py'
PLAIN_CONFIG = f'{ROOT}/configs/toy/faster_rcnn_r50_toy-coco.py'
needs_toy = pytest.mark.skipif(not has_module('sklearn'),
                               reason='the toy data generators draw scikit-learn\'s images')

train = load_tool('train.py', name='train_tool')
test = load_tool('test.py', name='test_tool')


@pytest.fixture(scope='module')
def toy_coco(tmp_path_factory):
    gen = load_tool('dataset_converters', 'make_toy_coco.py')
    root = str(tmp_path_factory.mktemp('data') / 'coco')
    gen.generate(root, num_train=1, num_val=1)
    return root


def model_state(config):
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from mmdet.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(Config.fromfile(config).model).state_dict()


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """A training checkpoint of the toy detector without SE, one of the SE detector, and
    files that are not checkpoints."""
    folder = tmp_path_factory.mktemp('ckpts')
    resumable = dict(meta=dict(epoch=1, iter=38), message_hub={})
    plain, se = folder / 'plain.pth', folder / 'se.pth'
    torch.save(dict(resumable, state_dict=model_state(PLAIN_CONFIG)), plain)
    torch.save(dict(resumable, state_dict=model_state(SE_CONFIG)), se)
    data = se.read_bytes()
    (folder / 'truncated.pth').write_bytes(data[:len(data) // 2])
    (folder / 'random.pth').write_bytes(bytes(range(256)) * 64)
    torch.save(dict(state_dict=model_state(SE_CONFIG)), folder / 'weights.pth')
    return folder


def refused(main, argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), err
    assert 'weights_only' not in err and 'Traceback' not in err
    return lines[0]


@requires_mmdet
@needs_toy
def test_test_py_refuses_before_writing(toy_coco, checkpoints, tmp_path, capsys):
    work = tmp_path / 'work'
    args = ['--data-root', toy_coco, '--work-dir', str(work)]
    # the SE detector's config, a checkpoint of the detector without SE
    msg = refused(test.main, [SE_CONFIG, str(checkpoints / 'plain.pth')] + args, capsys)
    assert 'plain.pth does not fit the model of the config' in msg
    assert "of the model's" in msg and '%) are missing from it (e.g. backbone.layer1.0.' in msg
    assert '.se.' in msg
    # and the other way round: keys the model does not have
    msg = refused(test.main, [PLAIN_CONFIG, str(checkpoints / 'se.pth')] + args, capsys)
    assert '%) are not in the model (e.g. backbone.layer1.0.' in msg and '.se.' in msg
    for name, what in (('truncated.pth', 'truncated'), ('random.pth', 'not a PyTorch checkpoint')):
        msg = refused(test.main, [SE_CONFIG, str(checkpoints / name)] + args, capsys)
        assert name in msg and what in msg, msg
    assert not work.exists()


@requires_mmdet
@needs_toy
def test_resume_refuses_before_writing(toy_coco, checkpoints, tmp_path, capsys):
    work = tmp_path / 'work'
    args = [SE_CONFIG, '--data-root', toy_coco, '--work-dir', str(work), '--resume']
    msg = refused(train.main, args + [str(checkpoints / 'plain.pth')], capsys)
    assert 'does not fit the model of the config' in msg and '.se.' in msg
    msg = refused(train.main, args + [str(checkpoints / 'truncated.pth')], capsys)
    assert 'truncated' in msg
    msg = refused(train.main, args + [str(checkpoints / 'weights.pth')], capsys)
    assert 'holds weights, not a training state to resume' in msg and 'load_from=' in msg
    assert not work.exists()

    # --resume without a path: the work dir's newest checkpoint, which is checked alike
    work.mkdir()
    (work / 'epoch_1.pth').write_bytes((checkpoints / 'plain.pth').read_bytes())
    msg = refused(train.main, args, capsys)
    assert 'epoch_1.pth does not fit the model of the config' in msg
    assert sorted(p.name for p in work.iterdir()) == ['epoch_1.pth']


@requires_mmdet
@needs_toy
def test_the_command_line_says_it_in_one_line(toy_coco, checkpoints, tmp_path):
    work = tmp_path / 'work'
    proc = run_tool([sys.executable, f'{ROOT}/tools/test.py', SE_CONFIG,
                     str(checkpoints / 'random.pth'), '--data-root', toy_coco, '--work-dir',
                     str(work)], check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f'error: {checkpoints / "random.pth"}: not a PyTorch checkpoint (neither a zip archive '
        f'written by torch.save, nor its legacy format, nor a safetensors file; it starts with '
        f'bytes 00 01 02 03 04 05 06 07)')
    assert 'Traceback' not in proc.stderr and 'weights_only' not in proc.stderr
    assert not work.exists()
