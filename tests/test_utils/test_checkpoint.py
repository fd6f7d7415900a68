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
