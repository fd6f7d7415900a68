"""AttnCCHead against mmseg's CCHead (mmcv.ops.CrissCrossAttention): same weights, same outputs,
losses and gradients, for every recurrence count."""
import pytest
import torch

from .head_helpers import (MARKS, SIZES, build_pair, compare_eval, compare_training,
                           data_samples, features)

pytestmark = MARKS

CFG = dict(in_channels=16, channels=16, num_classes=5, norm_cfg=dict(type='BN'))


@pytest.mark.parametrize('hw', SIZES, ids=lambda hw: f'{hw[0]}x{hw[1]}')
@pytest.mark.parametrize('recurrence', [1, 2, 3])
def test_outputs_match_mmseg(hw, recurrence):
    ref, ours = build_pair('CCHead', dict(CFG, recurrence=recurrence))
    assert ours.cca.recurrence == ref.recurrence == recurrence
    assert ours.cca.gamma.item() == pytest.approx(ref.cca.gamma.scale.item())
    compare_eval(ref, ours, features([8, 16], hw))


@pytest.mark.parametrize('kwargs', [dict(concat_input=False), dict(kernel_size=1),
                                    dict(dilation=2), dict(recurrence=0)],
                         ids=['no_concat', 'k1', 'dilation2', 'r0'])
def test_fcn_options_match_mmseg(kwargs):
    ref, ours = build_pair('CCHead', dict(CFG, **kwargs))
    compare_eval(ref, ours, features([16], (7, 9)))


def test_recurrence_count_is_seen():
    # one pass fewer or more than mmseg's gives other outputs: the comparison sees the count
    ref, _ = build_pair('CCHead', dict(CFG, recurrence=2))
    x = features([16], (6, 7))
    ref.eval()
    with torch.no_grad():
        expected = ref(x)
    for recurrence in (1, 3):
        _, ours = build_pair('CCHead', dict(CFG, recurrence=recurrence))
        ours.eval()
        with torch.no_grad():
            assert (ours(x) - expected).abs().max() > 1e-3 * expected.abs().max()


@pytest.mark.parametrize('hw', SIZES, ids=lambda hw: f'{hw[0]}x{hw[1]}')
def test_training_losses_and_gradients_match_mmseg(hw):
    ref, ours = build_pair('CCHead', dict(CFG, dropout_ratio=0.3))
    compare_training(ref, ours, features([16], hw), data_samples(2, hw, 5))


def test_initial_state_matches_mmseg():
    from mmseg.models.decode_heads import CCHead

    from mmattn.models.heads import AttnCCHead
    ref, ours = CCHead(**CFG), AttnCCHead(**CFG)
    ref.init_weights(), ours.init_weights()
    assert ref.recurrence == ours.recurrence == 2
    assert ref.cca.gamma.scale.item() == 0 and ours.cca.gamma.item() == 0
    assert ours.cca.key_channels == ref.cca.query_conv.out_channels == 2
    mapped = type(ours).from_mmseg_state_dict(ref.state_dict())
    assert sorted(mapped) == sorted(ours.state_dict())
