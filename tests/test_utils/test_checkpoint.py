"""mmengine's checkpoints load under torch's safe loader; arbitrary pickles are still refused."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer

import mmattn  # noqa: F401  (adds the allow-list on import)


class NotAllowed:
    pass


def test_mmengine_checkpoint_types_load(tmp_path):
    buf = HistoryBuffer()
    buf.update(1.5)
    ckpt = dict(meta=dict(epoch=2, np_float=np.float64(0.3), np_int=np.int64(7),
                          arr=np.arange(3, dtype=np.float32)),
                message_hub=dict(log_scalars={'loss': buf}),
                state_dict={'w': torch.ones(2)})
    torch.save(ckpt, tmp_path / 'c.pth')
    loaded = torch.load(tmp_path / 'c.pth')  # weights_only=True is torch's default
    assert loaded['meta']['np_int'] == 7 and loaded['meta']['arr'].tolist() == [0, 1, 2]
    assert loaded['message_hub']['log_scalars']['loss'].current() == 1.5


def test_other_pickles_still_refused(tmp_path):
    torch.save({'x': NotAllowed()}, tmp_path / 'evil.pth')
    with pytest.raises(pickle.UnpicklingError, match='weights_only'):
        torch.load(tmp_path / 'evil.pth')


def test_getattr_is_only_allowed_on_history_buffers(tmp_path):
    class Evil:
        def __reduce__(self):
            return (getattr, (np.ndarray, 'tofile'))

    torch.save({'x': Evil()}, tmp_path / 'evil.pth')
    with pytest.raises(pickle.UnpicklingError, match='refusing getattr'):
        torch.load(tmp_path / 'evil.pth')


# -- reading a checkpoint file, and whether it fits the model ----------------------------------

def test_read_checkpoint_refuses_in_one_line_without_unsafe_advice(tmp_path):
    from mmattn.utils import CheckpointFileError, read_checkpoint
    torch.save({'state_dict': {'w': torch.ones(3)}}, tmp_path / 'good.pth')
    data = (tmp_path / 'good.pth').read_bytes()
    (tmp_path / 'cut.pth').write_bytes(data[:len(data) - 30])
    (tmp_path / 'empty.pth').write_bytes(b'')
    (tmp_path / 'random.pth').write_bytes(bytes(range(200)))
    torch.save({'x': NotAllowed()}, tmp_path / 'object.pth')
    assert torch.equal(read_checkpoint(str(tmp_path / 'good.pth'))['state_dict']['w'],
                       torch.ones(3))
    for name, says in (('cut.pth', 'truncated'), ('empty.pth', 'empty (0 bytes)'),
                       ('random.pth', 'not a PyTorch checkpoint'),
                       ('object.pth', 'holds a pickled Python object'),
                       ('none.pth', 'no such file')):
        with pytest.raises(CheckpointFileError) as info:
            read_checkpoint(str(tmp_path / name))
        msg = str(info.value)
        assert msg.startswith(f'{tmp_path / name}: ') and says in msg, msg
        assert '\n' not in msg and 'weights_only' not in msg


def test_is_complete_tells_a_file_cut_short(tmp_path):
    from mmattn.utils.checkpoint import is_complete
    torch.save({'w': torch.ones(1000)}, tmp_path / 'a.pth')
    data = (tmp_path / 'a.pth').read_bytes()
    (tmp_path / 'b.pth').write_bytes(data[:len(data) // 2])
    (tmp_path / 'c.pth').write_bytes(b'')
    assert is_complete(str(tmp_path / 'a.pth'))
    assert not any(is_complete(str(tmp_path / n)) for n in ('b.pth', 'c.pth', 'd.pth'))


def test_checkpoint_fit_names_shares_and_examples():
    from mmattn.utils import CheckpointMismatchError, check_checkpoint_fits
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    state = model.state_dict()
    check_checkpoint_fits(model, {'state_dict': state}, 'a.pth')
    # mmengine strips a DistributedDataParallel prefix: so does the check
    check_checkpoint_fits(model, {f'module.{k}': v for k, v in state.items()}, 'a.pth')
    other = dict(state)
    del other['1.running_var']
    other['2.weight'] = torch.ones(1)
    other['0.weight'] = torch.ones(4, 3, 3, 3)
    with pytest.raises(CheckpointMismatchError) as info:
        check_checkpoint_fits(model, {'state_dict': other}, 'a.pth')
    assert str(info.value) == (
        "a.pth does not fit the model of the config: 1 of the model's 7 keys (14%) are "
        "missing from it (e.g. 1.running_var); 1 of the checkpoint's 7 keys (14%) are not in "
        "the model (e.g. 2.weight); 1 tensor(s) have another shape (e.g. 0.weight (4, 3, 3, 3) "
        "for (4, 3, 1, 1)). It is a checkpoint of another model or config: give the config it "
        "was trained with.")


def test_resumable_needs_mmengines_training_state():
    from mmattn.utils import CheckpointMismatchError
    from mmattn.utils.checkpoint import check_resumable
    meta = dict(epoch=2, iter=20)
    assert check_resumable(dict(meta=meta, message_hub={}, state_dict={}), 'a.pth') == meta
    for bad in (dict(state_dict={}), dict(meta=dict(epoch=2), message_hub={}, state_dict={})):
        with pytest.raises(CheckpointMismatchError, match='holds weights, not a training state'):
            check_resumable(bad, 'a.pth')


# -- which checkpoint --resume continues from ----------------------------------------------------

def test_latest_checkpoint_survives_a_kill_while_saving(tmp_path):
    import os
    import time

    from mmattn.utils.resume import latest_checkpoint
    assert latest_checkpoint(str(tmp_path / 'none')) == (None, None)
    assert latest_checkpoint(str(tmp_path)) == (None, None)
    for i in (1, 2, 3):
        torch.save({'w': torch.ones(100)}, tmp_path / f'iter_{i}.pth')
        os.utime(tmp_path / f'iter_{i}.pth', (time.time() + i, time.time() + i))
    record = tmp_path / 'last_checkpoint'
    record.write_text(str(tmp_path / 'iter_2.pth'))
    assert latest_checkpoint(str(tmp_path)) == (str(tmp_path / 'iter_2.pth'), None)
    # the record emptied by a kill while it was rewritten: the newest complete checkpoint
    record.write_text('')
    found, note = latest_checkpoint(str(tmp_path))
    assert found == str(tmp_path / 'iter_3.pth') and 'last_checkpoint is empty' in note
    # the newest checkpoint cut short, and the record naming a file that is gone
    data = (tmp_path / 'iter_3.pth').read_bytes()
    (tmp_path / 'iter_3.pth').write_bytes(data[:100])
    record.write_text(str(tmp_path / 'iter_0.pth'))
    found, note = latest_checkpoint(str(tmp_path))
    assert found == str(tmp_path / 'iter_2.pth') and 'does not exist' in note
    record.write_text(str(tmp_path / 'iter_3.pth'))
    found, note = latest_checkpoint(str(tmp_path))
    assert found == str(tmp_path / 'iter_2.pth') and 'incomplete' in note


def test_random_number_states_round_trip_through_the_safe_loader(tmp_path):
    import random

    from mmattn.utils.resume import capture_rng_state, restore_rng_state
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.randn()  # a cached Gaussian is part of numpy's state
    torch.save({'meta': {'mmattn_resume': {'rng': [capture_rng_state()]}}}, tmp_path / 'c.pth')
    expected = (random.random(), np.random.randn(3).tolist(), torch.rand(3))
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    state = torch.load(tmp_path / 'c.pth')['meta']['mmattn_resume']['rng'][0]  # weights_only
    restore_rng_state(state)
    got = (random.random(), np.random.randn(3).tolist(), torch.rand(3))
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2])
