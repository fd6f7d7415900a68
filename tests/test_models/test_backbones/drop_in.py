"""Checks that a drop-in backbone without plugins is its original: the same initialisation, and
the same outputs from the same weights."""
import torch

from tests.helpers import randomize_


def assert_same_init(ref, ours):
    """``init_weights`` from the same seed gives every tensor the same values."""
    torch.manual_seed(0)
    ref.init_weights()
    torch.manual_seed(0)
    ours.init_weights()
    for (k, a), b in zip(ref.state_dict().items(), ours.state_dict().values()):
        assert torch.equal(a, b), k


def assert_same_outputs(ref, ours, n_outs):
    """From the same random weights, the same ``n_outs`` outputs in eval and training mode."""
    randomize_(ref, scale=0.1)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 40, 36)
    for train in (False, True):
        ref.train(train)
        ours.train(train)
        with torch.no_grad():
            outs_ref, outs = ref(x), ours(x)
        assert len(outs) == len(outs_ref) == n_outs
        for a, b in zip(outs_ref, outs):
            assert torch.isfinite(a).all() and torch.equal(a, b)
