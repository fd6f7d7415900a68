"""AttnDAHead against mmseg's DAHead: same weights, same outputs, losses and gradients."""
import pytest
import torch

from tests.helpers import assert_close
from .head_helpers import (MARKS, SIZES, build_pair, compare_eval, compare_training, data_samples,
                           features, set_gammas)

pytestmark = MARKS

CFG = dict(in_channels=16, channels=16, num_classes=5, norm_cfg=dict(type='BN'))


@pytest.mark.parametrize('hw', SIZES, ids=lambda hw: f'{hw[0]}x{hw[1]}')
@pytest.mark.parametrize('pam_channels', [4, 3])  # 3 does not divide 16
@pytest.mark.parametrize('lean', [True, False])
def test_outputs_match_mmseg(hw, pam_channels, lean):
    ref, ours = build_pair('DAHead', dict(CFG, pam_channels=pam_channels))
    ours.pam.lean = lean  # mmseg's DAHead does not take ``lean``; set it on our module
    assert ours.pam.key_channels == pam_channels
    assert ours.pam.gamma.item() == pytest.approx(ref.pam.gamma.scale.item())
    assert ours.cam.gamma.item() == pytest.approx(ref.cam.gamma.scale.item())
    x = features([8, 16], hw)  # in_index=-1 picks the 16-channel map
    compare_eval(ref, ours, x)


def test_lean_is_the_default():
    from mmattn.models.heads import AttnDAHead
    assert AttnDAHead(pam_channels=2, **CFG).pam.lean
    assert not AttnDAHead(pam_channels=2, lean=False, **CFG).pam.lean


def test_attention_branches_are_seen():
    # the comparison sees both attention paths: zeroing one gamma changes the outputs
    ref, ours = build_pair('DAHead', dict(CFG, pam_channels=4))
    x = features([16], (6, 7))
    ref.eval(), ours.eval()
    with torch.no_grad():
        expected = ref(x)[0]
        for gamma in (ours.pam.gamma, ours.cam.gamma):
            saved = gamma.clone()
            gamma.zero_()
            assert (ours(x)[0] - expected).abs().max() > 1e-2 * expected.abs().max()
            gamma.copy_(saved)


@pytest.mark.parametrize('hw', SIZES, ids=lambda hw: f'{hw[0]}x{hw[1]}')
def test_training_losses_and_gradients_match_mmseg(hw):
    ref, ours = build_pair('DAHead', dict(CFG, pam_channels=4, dropout_ratio=0.3))
    x = features([16], hw)
    samples = data_samples(2, hw, 5)
    loss = compare_training(ref, ours, x, samples)
    assert set(loss) == {f'{p}.{k}' for p in ('pam_cam', 'pam', 'cam')
                         for k in ('loss_ce', 'acc_seg')}


@pytest.mark.parametrize('align_corners', [False, True])
def test_predict_matches_mmseg(align_corners):
    ref, ours = build_pair('DAHead', dict(CFG, pam_channels=4, align_corners=align_corners))
    x = features([16], (5, 7))
    metas = [dict(img_shape=(37, 53), pad_shape=(40, 56))] * 2
    ref.eval(), ours.eval()
    with torch.no_grad():
        expected = ref.predict(x, metas, dict())
        actual = ours.predict(x, metas, dict())
    assert actual.shape == (2, 5, 40, 56)
    assert_close(actual, expected)


def test_initial_state_matches_mmseg():
    from mmseg.models.decode_heads import DAHead

    from mmattn.models.heads import AttnDAHead
    torch.manual_seed(0)
    ref = DAHead(pam_channels=4, **CFG)
    ours = AttnDAHead(pam_channels=4, **CFG)
    ref.init_weights(), ours.init_weights()
    # the attention starts switched off (gamma 0) in both, the layers have mmseg's shapes
    assert ref.pam.gamma.scale.item() == 0 and ours.pam.gamma.item() == 0
    assert ref.cam.gamma.scale.item() == 0 and ours.cam.gamma.item() == 0
    shapes = {k: v.shape for k, v in ours.state_dict().items()}
    mapped = type(ours).from_mmseg_state_dict(ref.state_dict())
    assert {k: v.reshape(shapes[k]).shape for k, v in mapped.items()} == shapes
    # conv_seg gets BaseDecodeHead's Normal(std=0.01) init
    assert ours.conv_seg.weight.std().item() == pytest.approx(0.01, rel=0.5)


def test_state_dict_of_ours_loads_into_ours():
    _, ours = build_pair('DAHead', dict(CFG, pam_channels=4))
    set_gammas(ours, 0.3)
    from mmattn.models.heads import AttnDAHead
    other = AttnDAHead(pam_channels=4, **CFG).double()
    other.load_state_dict(ours.state_dict(), strict=True)
    assert other.pam.gamma.item() == pytest.approx(0.3)


@pytest.mark.parametrize('channels,pam_channels', [(16, 3), (512, 64), (510, 7), (24, 40)])
def test_pam_channels_reach_the_pam_directly(channels, pam_channels):
    """pam_channels is DANetPAM's key_channels, any width (not through a reduction ratio)."""
    from mmseg.models.decode_heads import DAHead

    from mmattn.models.heads import AttnDAHead
    cfg = dict(CFG, channels=channels)
    ours = AttnDAHead(pam_channels=pam_channels, **cfg)
    ref = DAHead(pam_channels=pam_channels, **cfg)
    assert ours.pam.key_channels == pam_channels
    for name in ('query', 'key', 'value'):
        assert (getattr(ours.pam, f'{name}_conv').weight.shape
                == getattr(ref.pam, f'{name}_project').weight.shape)
    assert ours.pam.query_conv.weight.shape == (pam_channels, channels, 1, 1)


@pytest.mark.parametrize('pam_channels', [0, -4, 2.5, None])
def test_bad_pam_channels_error_clearly(pam_channels):
    from mmattn.models.heads import AttnDAHead
    with pytest.raises(ValueError, match=f'AttnDAHead: pam_channels must be a positive int, '
                                         f'got {pam_channels!r}'):
        AttnDAHead(pam_channels=pam_channels, **CFG)
