"""AttnOCRHead against mmseg's OCRHead: same weights, same outputs, losses and gradients."""
import pytest
import torch

from tests.helpers import assert_close
from .head_helpers import (MARKS, SIZES, build_pair, compare_eval, compare_training,
                           conv_types, data_samples, features)

pytestmark = MARKS

CFG = dict(in_channels=16, channels=12, ocr_channels=8, num_classes=5,
           norm_cfg=dict(type='BN'))
# weights of std 1: with smaller ones the five ReLU layers between the coarse logits and the
# output leave the object context a 1e-8 share of the logits, too little to test it
SCALE = 1.0


def coarse_logits(hw, num_classes=5, seed=7):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(2, num_classes, *hw, generator=gen, dtype=torch.float64) * 3


@pytest.mark.parametrize('hw', SIZES, ids=lambda hw: f'{hw[0]}x{hw[1]}')
@pytest.mark.parametrize('norm_cfg', [dict(type='BN'), None], ids=['bn', 'no_norm'])
def test_outputs_match_mmseg(hw, norm_cfg):
    ref, ours = build_pair('OCRHead', dict(CFG, norm_cfg=norm_cfg), scale=SCALE)
    compare_eval(ref, ours, features([16], hw), coarse_logits(hw))


def test_scale_below_one_matches_mmseg():
    ref, ours = build_pair('OCRHead', dict(CFG, scale=0.5), scale=SCALE)
    compare_eval(ref, ours, features([16], (6, 9)), coarse_logits((6, 9)))


def test_hrnet_style_resize_concat_matches_mmseg():
    # OCRNet on HRNet: four levels resized to the first one's size and concatenated
    cfg = dict(CFG, in_channels=[4, 8, 12, 16], in_index=[0, 1, 2, 3],
               input_transform='resize_concat')
    ref, ours = build_pair('OCRHead', cfg, scale=SCALE)
    gen = torch.Generator().manual_seed(3)
    x = [torch.randn(2, c, 12 // s, 20 // s, generator=gen, dtype=torch.float64)
         for c, s in zip([4, 8, 12, 16], [1, 2, 4, 4])]
    compare_eval(ref, ours, x, coarse_logits((12, 20)))


def test_coarse_logits_are_seen():
    ref, ours = build_pair('OCRHead', CFG, scale=SCALE)
    x, logits = features([16], (6, 7)), coarse_logits((6, 7))
    ref.eval(), ours.eval()
    # (a permutation of the classes would not do: the attention over regions ignores order)
    with torch.no_grad():
        expected = ref(x, logits)
        change = (ours(x, coarse_logits((6, 7), seed=8)) - expected).abs().max()
    assert change > 1e-3 * expected.abs().max()


@pytest.mark.parametrize('hw', SIZES, ids=lambda hw: f'{hw[0]}x{hw[1]}')
def test_training_losses_and_gradients_match_mmseg(hw):
    ref, ours = build_pair('OCRHead', dict(CFG, dropout_ratio=0.3), scale=SCALE)
    compare_training(ref, ours, features([16], hw), data_samples(2, hw, 5),
                     extra=(coarse_logits(hw), ))


def test_predict_matches_mmseg():
    ref, ours = build_pair('OCRHead', CFG, scale=SCALE)
    x, logits = features([16], (5, 7)), coarse_logits((5, 7))
    metas = [dict(img_shape=(40, 56), pad_shape=(40, 56))] * 2
    ref.eval(), ours.eval()
    with torch.no_grad():
        assert_close(ours.predict(x, logits, metas, dict()),
                     ref.predict(x, logits, metas, dict()))


def test_scale_above_one_fails_in_mmseg_and_is_refused_here():
    from mmseg.models.decode_heads import OCRHead

    from mmattn.models.heads import AttnOCRHead
    ref = OCRHead(scale=2, **CFG).eval()
    with pytest.raises(Exception):
        with torch.no_grad():
            ref(features([16], (8, 8), dtype=torch.float32), coarse_logits((8, 8)).float())
    with pytest.raises(ValueError, match=r'scale=2 is not supported.*Use scale=1'):
        AttnOCRHead(scale=2, **CFG)


def test_conv_cfg_reaches_the_same_convs_as_in_mmseg():
    """conv_cfg (here mmcv's weight-standardised ConvWS) builds every conv of the object
    context block, as in mmseg's OCRHead; outputs and training stay mmseg's."""
    cfg = dict(CFG, conv_cfg=dict(type='ConvWS'))
    ref, ours = build_pair('OCRHead', cfg, scale=SCALE)
    types = conv_types(ref, ours)
    assert types == {k: (t, t) for k, (t, _) in types.items()}
    assert {k for k, (t, _) in types.items() if t == 'ConvWS2d'} == {
        'ocr.mid_conv.conv', 'ocr.f_pixel.0.conv', 'ocr.f_pixel.1.conv', 'ocr.f_object.0.conv',
        'ocr.f_object.1.conv', 'ocr.f_down.conv', 'ocr.f_up.conv', 'ocr.bottleneck.conv'}
    assert types['conv_seg'] == ('Conv2d', 'Conv2d')
    x, logits = features([16], (6, 7)), coarse_logits((6, 7))
    out = compare_eval(ref, ours, x, logits)
    compare_training(ref, ours, x, data_samples(2, (6, 7), 5), extra=(logits, ))
    # the same weights in plain convs compute something else: conv_cfg is in effect
    from mmattn.models.heads import AttnOCRHead
    plain = AttnOCRHead(**CFG).double().eval()
    plain.load_state_dict(ours.state_dict())
    with torch.no_grad():
        assert (plain(x, logits) - out[0]).abs().max() > 1e-3 * out[0].abs().max()


def test_state_dict_keys_map_onto_mmseg():
    from mmseg.models.decode_heads import OCRHead

    from mmattn.models.heads import AttnOCRHead
    ref, ours = OCRHead(**CFG), AttnOCRHead(**CFG)
    mapped = type(ours).from_mmseg_state_dict(ref.state_dict())
    assert {k: v.shape for k, v in mapped.items()} == \
        {k: v.shape for k, v in ours.state_dict().items()}
    assert ours.ocr.mid_conv.conv.bias is None  # mmseg's 3x3 conv before its BN has no bias
