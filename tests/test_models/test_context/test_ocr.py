import pytest
import torch
import torch.nn.functional as F

from mmattn.models.context.ocr import ObjectContext
from tests.helpers import assert_close, randomize_
from tests.test_models.test_context.test_ann import check_layout_and_onnx


def bn_eval(x, bn):
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return (x - bn.running_mean[None, :, None, None]) * scale[None, :, None, None] \
        + bn.bias[None, :, None, None]


def cbr(x, cm, padding=0):
    """conv (with its bias if any) -> eval BN -> ReLU, from a ConvModule's tensors."""
    y = F.conv2d(x, cm.conv.weight, cm.conv.bias, padding=padding)
    return torch.relu(bn_eval(y, cm.bn))


def ocr_reference(m, x, logits):
    """HRNet-OCR's conv3x3_ocr, SpatialGather_Module and SpatialOCR_Module written out."""
    feats = x if m.mid_conv is None else cbr(x, m.mid_conv, padding=1)
    n, c, h, w = feats.shape
    k = logits.shape[1]
    # soft object regions: softmax over the positions of each class's logits
    probs = torch.softmax(logits.reshape(n, k, h * w), dim=2)
    regions = torch.einsum('nkp,ncp->nck', probs, feats.reshape(n, c, h * w))[..., None]
    query = cbr(cbr(feats, m.f_pixel[0]), m.f_pixel[1]).reshape(n, -1, h * w)
    key = cbr(cbr(regions, m.f_object[0]), m.f_object[1]).reshape(n, -1, k)
    value = cbr(regions, m.f_down).reshape(n, -1, k)
    sim = torch.softmax(torch.einsum('ndp,ndk->npk', query, key) * m.key_channels**-0.5, -1)
    context = torch.einsum('npk,ndk->ndp', sim, value).reshape(n, -1, h, w)
    context = cbr(context, m.f_up)
    return cbr(torch.cat([context, feats], 1), m.bottleneck)


@pytest.mark.parametrize('in_c,mid,key,classes,hw', [
    (12, 16, 8, 5, (9, 11)), (16, None, 6, 3, (7, 5)), (6, 10, 12, 1, (1, 4))])
def test_ocr_matches_formula(in_c, mid, key, classes, hw):
    m = randomize_(ObjectContext(in_c, num_classes=classes, mid_channels=mid,
                                 key_channels=key)).double().eval()
    x = torch.randn(2, in_c, *hw, dtype=torch.float64)
    logits = torch.randn(2, classes, *hw, dtype=torch.float64) * 3
    assert_close(m(x, logits), ocr_reference(m, x, logits))


def test_ocr_regions_are_softmax_weighted_means():
    m = ObjectContext(4, num_classes=2, mid_channels=None)
    feats = torch.randn(1, 4, 3, 3, dtype=torch.float64)
    logits = torch.full((1, 2, 3, 3), -1e4, dtype=torch.float64)
    logits[0, 0, 1, 2] = 0      # class 0 sits at one pixel
    logits[0, 1] = 0            # class 1 is uniform
    r = m.object_regions(feats, logits)[..., 0]
    assert_close(r[0, :, 0], feats[0, :, 1, 2])
    assert_close(r[0, :, 1], feats[0].mean(dim=(1, 2)))


def test_ocr_initial_state():
    m = ObjectContext(720)            # HRNetV2-W48's concatenated features
    assert not m.is_plugin
    assert m.num_classes == 19 and m.mid_channels == 512 and m.key_channels == 256
    assert m.out_channels == 512
    assert m.mid_conv.conv.weight.shape == (512, 720, 3, 3) and m.mid_conv.conv.bias is not None
    for seq in (m.f_pixel, m.f_object):
        assert [cm.conv.weight.shape[:2] for cm in seq] == [(256, 512), (256, 256)]
    assert m.f_down.conv.weight.shape[:2] == (256, 512)
    assert m.f_up.conv.weight.shape[:2] == (512, 256)
    assert m.bottleneck.conv.weight.shape[:2] == (512, 1024)
    # no bias before a BN inside the block (HRNet-OCR and mmseg)
    inner = [*m.f_pixel, *m.f_object, m.f_down, m.f_up, m.bottleneck]
    assert all(cm.conv.bias is None and cm.with_norm and cm.with_activation for cm in inner)
    assert isinstance(m.dropout, torch.nn.Dropout2d) and m.dropout.p == 0.05
    # mmseg's OCRHead layout: its 3x3 bottleneck has no bias either
    assert ObjectContext(720, norm_conv_bias=False).mid_conv.conv.bias is None
    # without the mid projection the block runs on its input's width
    assert ObjectContext(48, mid_channels=None).f_up.conv.weight.shape[:2] == (48, 256)
    feats, logits = ObjectContext.example_inputs(32, (2, 32, 5, 6))
    assert feats.shape == (2, 32, 5, 6) and logits.shape == (2, 19, 5, 6)


def test_ocr_rejects_wrong_inputs():
    m = ObjectContext(8, num_classes=4, mid_channels=None, key_channels=4)
    with pytest.raises(ValueError, match='logits with 4 channels'):
        m(torch.randn(1, 8, 5, 5), torch.randn(1, 3, 5, 5))
    with pytest.raises(ValueError, match='resize the coarse logits'):
        m(torch.randn(1, 8, 5, 5), torch.randn(1, 4, 3, 3))
    with pytest.raises(ValueError, match='num_classes'):
        ObjectContext(8, num_classes=0)


@pytest.mark.parametrize('kwargs', [{}, dict(mid_channels=None)], ids=['mid', 'no_mid'])
def test_ocr_channels_last_and_onnx(kwargs):
    check_layout_and_onnx(ObjectContext, **kwargs)


def test_conv_cfg_builds_every_conv():
    """conv_cfg reaches all of the block's convs (all ConvModules, as in mmseg's OCRHead)."""
    from mmcv.cnn.bricks.conv_ws import ConvWS2d
    m = ObjectContext(12, num_classes=3, mid_channels=8, key_channels=4,
                      conv_cfg=dict(type='ConvWS'))
    plain = ObjectContext(12, num_classes=3, mid_channels=8, key_channels=4)
    convs = [mod for mod in m.modules() if isinstance(mod, torch.nn.Conv2d)]
    assert len(convs) == 8 and all(type(c) is ConvWS2d for c in convs)
    assert all(type(c) is torch.nn.Conv2d for c in plain.modules()
               if isinstance(c, torch.nn.Conv2d))
    randomize_(m, scale=0.3)
    plain.load_state_dict(m.state_dict())
    m.eval()
    plain.eval()
    x, logits = torch.randn(2, 12, 5, 6), torch.randn(2, 3, 5, 6)
    with torch.no_grad():
        y, y_plain = m(x, logits), plain(x, logits)
    assert (y - y_plain).abs().max() > 1e-3 * y_plain.abs().max()
