"""AttnANNHead against mmseg's ANNHead: same weights, same outputs, losses and gradients."""
import pytest
import torch

from .head_helpers import (MARKS, SIZES, build_pair, compare_eval, compare_training,
                           conv_types, data_samples, features)

pytestmark = MARKS

CFG = dict(in_channels=[8, 16], in_index=[2, 3], channels=12, project_channels=8,
           num_classes=5, norm_cfg=dict(type='BN'))


def backbone(hw, seed=1):
    return features([4, 6, 8, 16], hw, seed=seed)


@pytest.mark.parametrize('hw', SIZES, ids=lambda hw: f'{hw[0]}x{hw[1]}')
@pytest.mark.parametrize('key_pool_scales', [(1, 3, 6, 8), (1, 2)])
def test_outputs_match_mmseg(hw, key_pool_scales):
    ref, ours = build_pair('ANNHead', dict(CFG, key_pool_scales=key_pool_scales))
    compare_eval(ref, ours, backbone(hw))


def test_no_norm_matches_mmseg():
    ref, ours = build_pair('ANNHead', dict(CFG, norm_cfg=None))
    compare_eval(ref, ours, backbone((7, 9)))


def test_both_attention_blocks_are_seen():
    ref, ours = build_pair('ANNHead', CFG)
    x = backbone((6, 7))
    ref.eval(), ours.eval()
    with torch.no_grad():
        expected = ref(x)
        for conv in (ours.fusion.out_project, ours.context.out_project):
            saved = conv.weight.clone()
            conv.weight.mul_(0.5)
            assert (ours(x) - expected).abs().max() > 1e-3 * expected.abs().max()
            conv.weight.copy_(saved)


@pytest.mark.parametrize('hw', SIZES, ids=lambda hw: f'{hw[0]}x{hw[1]}')
def test_training_losses_and_gradients_match_mmseg(hw):
    ref, ours = build_pair('ANNHead', dict(CFG, dropout_ratio=0.3))
    # mmseg runs APNB's shared key/query projection twice a step, updating its BN statistics
    # twice; ours runs it once (see AttnANNHead's docstring): buffers are compared apart
    compare_training(ref, ours, backbone(hw), data_samples(2, hw, 5), check_buffers=False)
    ref_state = type(ours).from_mmseg_state_dict(ref.state_dict())
    for k, v in ours.state_dict().items():
        if ('running_' in k or 'num_batches' in k) and not k.startswith('context.'):
            torch.testing.assert_close(v, ref_state[k], rtol=1e-9, atol=1e-11)
    assert ref_state['context.key_project.bn.num_batches_tracked'].item() == 2
    assert ours.state_dict()['context.key_project.bn.num_batches_tracked'].item() == 1


def test_initial_state_matches_mmseg():
    from mmseg.models.decode_heads import ANNHead

    from mmattn.models.heads import AttnANNHead
    ref, ours = ANNHead(**CFG), AttnANNHead(**CFG)
    ref.init_weights(), ours.init_weights()
    for block in ('fusion', 'context'):
        theirs = getattr(ref, block).stages[0].out_project
        mine = getattr(ours, block).out_project
        assert theirs.weight.abs().sum() == 0 and mine.weight.abs().sum() == 0
        assert theirs.bias.abs().sum() == 0 and mine.bias.abs().sum() == 0
    assert ours.context.query_project is ours.context.key_project
    mapped = type(ours).from_mmseg_state_dict(ref.state_dict())
    assert {k: v.shape for k, v in mapped.items()} == \
        {k: v.shape for k, v in ours.state_dict().items()}


def test_query_scales_above_one_fail_in_mmseg_and_are_refused_here():
    from mmseg.models.decode_heads import ANNHead

    from mmattn.models.heads import AttnANNHead
    ref = ANNHead(query_scales=(2, ), **CFG).eval()
    with pytest.raises(Exception):
        with torch.no_grad():
            ref(features([4, 6, 8, 16], (8, 8), dtype=torch.float32))
    with pytest.raises(ValueError, match=r'query_scales=\(2,\) is not supported'):
        AttnANNHead(query_scales=(2, ), **CFG)


def test_dropout_ratio_zero_runs():
    # mmseg's ANNHead calls its dropout unconditionally and fails without one; ours runs
    from mmattn.models.heads import AttnANNHead
    head = AttnANNHead(**dict(CFG, dropout_ratio=0)).eval()
    assert head(features([4, 6, 8, 16], (5, 5), dtype=torch.float32)).shape == (2, 5, 5, 5)


def test_conv_cfg_reaches_the_same_convs_as_in_mmseg():
    """conv_cfg (mmcv's weight-standardised ConvWS) builds the convs mmseg builds with it: the
    projections with a norm, both blocks' fusion convs and the 3x3 bottleneck; the value and
    output projections stay plain 1x1 convs in both."""
    ref, ours = build_pair('ANNHead', dict(CFG, conv_cfg=dict(type='ConvWS')))
    types = conv_types(ref, ours)
    assert types == {k: (t, t) for k, (t, _) in types.items()}
    assert {k for k, (t, _) in types.items() if t == 'ConvWS2d'} == {
        'fusion.query_project.conv', 'fusion.key_project.conv', 'fusion.bottleneck.conv',
        'bottleneck.conv', 'context.key_project.conv', 'context.bottleneck.conv'}
    x = backbone((6, 7))
    out = compare_eval(ref, ours, x)
    compare_training(ref, ours, x, data_samples(2, (6, 7), 5), check_buffers=False)
    from mmattn.models.heads import AttnANNHead
    plain = AttnANNHead(**CFG).double().eval()
    plain.load_state_dict(ours.state_dict())
    with torch.no_grad():
        assert (plain(x) - out[0]).abs().max() > 1e-3 * out[0].abs().max()
