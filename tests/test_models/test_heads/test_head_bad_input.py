"""Bad input to the heads ends with a message that says what is wrong and which setting fixes it.
"""
import re

import pytest
import torch

from .head_helpers import MARKS, data_samples, features
from .test_checkpoints import segmentor_cfg

pytestmark = MARKS

HEADS = {
    'AttnDAHead': dict(in_channels=32, channels=8, pam_channels=2, num_classes=3),
    'AttnCCHead': dict(in_channels=32, channels=8, num_classes=3),
    'AttnOCRHead': dict(in_channels=32, channels=8, ocr_channels=4, num_classes=3),
}


def build(name, **kwargs):
    from mmattn.registry import MODELS
    return MODELS.build(dict(type=name, **kwargs)).eval()


def call(head, x):
    if type(head).__name__ == 'AttnOCRHead':
        return head(x, torch.randn(x[-1].shape[0], 3, *x[-1].shape[2:]))
    return head(x)


@pytest.mark.parametrize('name', list(HEADS))
def test_in_channels_disagreeing_with_the_backbone(name):
    head = build(name, **HEADS[name])
    x = features([8, 16], (6, 7), dtype=torch.float32)  # in_index=-1: 16 channels, not 32
    key = (r'model\.decode_head\[1\]\.in_channels' if name == 'AttnOCRHead'
           else r'model\.decode_head\.in_channels')
    with pytest.raises(ValueError, match=rf'{name}: in_channels=32 \(the channels it expects '
                       rf'from the backbone output in_index=-1\), but that output has 16 '
                       rf'channels\. Set `in_channels=16` in the head\'s config \({key}'):
        call(head, x)


def test_ann_in_channels_disagreeing_with_the_backbone():
    head = build('AttnANNHead', in_channels=[16, 32], in_index=[2, 3], channels=8,
                 project_channels=4, num_classes=3)
    x = features([4, 8, 12, 24], (6, 7), dtype=torch.float32)
    with pytest.raises(ValueError, match=re.escape(
            'AttnANNHead: in_channels=[16, 32] (the channels it expects from the backbone '
            'outputs in_index=[2, 3]), but those outputs have [12, 24] channels. Set '
            '`in_channels=[12, 24]` in the head\'s config (model.decode_head.in_channels)')):
        head(x)


def test_resize_concat_checks_each_level():
    head = build('AttnOCRHead', in_channels=[4, 8], in_index=[0, 1],
                 input_transform='resize_concat', channels=8, ocr_channels=4, num_classes=3)
    x = features([4, 6], (6, 7), dtype=torch.float32)
    with pytest.raises(ValueError, match=r'in_channels=\[4, 8\] .* have \[4, 6\] channels'):
        head(x, torch.randn(2, 3, 6, 7))


def test_ann_in_channels_must_be_two_levels():
    with pytest.raises(ValueError, match=r'in_channels must be the channels of two backbone '
                       r'outputs, \[low, high\]'):
        build('AttnANNHead', in_channels=32, channels=8, project_channels=4, num_classes=3)


def test_backbone_mismatch_in_a_segmentor():
    # mmseg's ResNet-50 head config on a narrow backbone: the message names the key to set
    from mmseg.registry import MODELS
    cfg = segmentor_cfg('DAHead', ours=True)
    cfg.decode_head.in_channels = 2048
    model = MODELS.build(cfg).eval()
    with pytest.raises(ValueError, match=r'AttnDAHead: in_channels=2048 .* has 64 channels\. '
                       r'Set `in_channels=64`'):
        model.predict(torch.randn(1, 3, 32, 32))


def test_a_tensor_instead_of_the_backbone_outputs():
    head = build('AttnDAHead', **HEADS['AttnDAHead'])
    with pytest.raises(TypeError, match=r'expected the list of feature maps a backbone \(or '
                       r'neck\) returns, got Tensor of shape \(2, 32, 6, 7\); for a single map '
                       r'pass \[x\] and set in_index=0'):
        head(torch.randn(2, 32, 6, 7))


def test_in_index_out_of_range():
    head = build('AttnCCHead', in_index=4, **HEADS['AttnCCHead'])
    with pytest.raises(IndexError, match=r'in_index=4 selects output 4, but the backbone '
                       r'returned 4 feature maps; set in_index to one of 0\.\.3'):
        head(features([8, 16, 32, 32], (6, 7), dtype=torch.float32))


# -- OCR without the cascade ---------------------------------------------------------------------
CASCADE = re.escape("OCRHead needs `type='CascadeEncoderDecoder'` with num_stages=2 and an "
                    "FCNHead first")


def ocr_in_encoder_decoder():
    from mmseg.registry import MODELS
    cfg = segmentor_cfg('OCRHead', ours=True)
    cfg.type = 'EncoderDecoder'
    cfg.pop('num_stages')
    cfg.decode_head = cfg.decode_head[1]  # the OCR head alone
    return MODELS.build(cfg)


@pytest.mark.parametrize('mode', ['loss', 'predict', 'tensor'])
def test_ocr_in_an_encoder_decoder(mode):
    model = ocr_in_encoder_decoder()
    model.train(mode == 'loss')
    samples = data_samples(1, (8, 8), 5) if mode != 'tensor' else None
    with pytest.raises(TypeError, match=r'AttnOCRHead refines the class logits of a previous '
                       r'decode head, given as prev_output; it got list as prev_output \(called '
                       rf'as a non-cascade head, e.g. by an EncoderDecoder\)\. {CASCADE}'
                       if mode != 'tensor' else rf'it got no prev_output\. {CASCADE}'):
        model(torch.randn(1, 3, 32, 32), samples, mode=mode)


def test_ocr_first_in_the_cascade():
    from mmseg.registry import MODELS
    cfg = segmentor_cfg('OCRHead', ours=True)
    cfg.decode_head = cfg.decode_head[::-1]  # OCR first, the FCNHead second
    model = MODELS.build(cfg).eval()
    with pytest.raises(TypeError, match=rf'it got no prev_output\. {CASCADE}'):
        model.predict(torch.randn(1, 3, 32, 32))


def test_ocr_forward_without_prev_output():
    head = build('AttnOCRHead', **HEADS['AttnOCRHead'])
    with pytest.raises(TypeError, match=rf'no prev_output\. {CASCADE}.*num_stages=2, '
                       r"decode_head=\[dict\(type='FCNHead'"):
        head(features([32], (6, 7), dtype=torch.float32))


def test_ocr_prev_output_of_another_class_count():
    head = build('AttnOCRHead', **HEADS['AttnOCRHead'])
    with pytest.raises(ValueError, match=r'prev_output must be the previous head\'s class '
                       r'logits, \(N, 3, H, W\) for num_classes=3; got Tensor of shape '
                       r'\(2, 19, 6, 7\)\. Give the FCNHead before it the same num_classes'):
        head(features([32], (6, 7), dtype=torch.float32), torch.randn(2, 19, 6, 7))


def test_ocr_prev_output_of_another_size():
    head = build('AttnOCRHead', **HEADS['AttnOCRHead'])
    with pytest.raises(ValueError, match=r'does not match the features .* must read the same '
                       r'backbone output \(the same in_index'):
        head(features([32], (6, 7), dtype=torch.float32), torch.randn(2, 3, 12, 14))


def test_unavailable_placeholder_says_why():
    from mmattn.models import heads
    cls = heads._unavailable('AttnTestHead', ImportError('No module named mmseg'))
    try:
        with pytest.raises(ImportError, match='mmattn.AttnTestHead needs mmsegmentation'):
            cls(in_channels=3)
    finally:
        from mmattn.registry import MODELS
        MODELS._module_dict.pop('AttnTestHead')
