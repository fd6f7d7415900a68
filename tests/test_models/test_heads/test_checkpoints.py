"""A whole mmseg segmentor checkpoint (mmengine's format) loads into the same segmentor with our
head, through mmengine's load_checkpoint, strictly; the two models then predict and train alike.
"""
import copy

import pytest
import torch

from tests.helpers import assert_close
from .head_helpers import MARKS, data_samples, randomize_, set_gammas

pytestmark = MARKS

NORM = dict(type='BN', requires_grad=True)
BACKBONE = dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8, num_stages=4,
                out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1),
                norm_cfg=NORM, contract_dilation=True)  # outputs 8, 16, 32, 64 at 1/8
COMMON = dict(channels=16, num_classes=5, norm_cfg=NORM, dropout_ratio=0.1)
AUX = dict(type='FCNHead', in_channels=32, in_index=2, channels=8, num_convs=1,
           concat_input=False, num_classes=5, norm_cfg=NORM, loss_decode=dict(
               type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4))

HEADS = {
    'DAHead': dict(type='DAHead', in_channels=64, in_index=3, pam_channels=4, **COMMON),
    'CCHead': dict(type='CCHead', in_channels=64, in_index=3, recurrence=2, **COMMON),
    'ANNHead': dict(type='ANNHead', in_channels=[32, 64], in_index=[2, 3],
                    project_channels=8, **COMMON),
    'OCRHead': [dict(type='FCNHead', in_channels=64, in_index=3, channels=16, num_convs=1,
                     concat_input=False, num_classes=5, norm_cfg=NORM),
                dict(type='OCRHead', in_channels=64, in_index=3, ocr_channels=8, **COMMON)],
}


def segmentor_cfg(head_type, ours):
    head = copy.deepcopy(HEADS[head_type])
    target = head[-1] if isinstance(head, list) else head
    if ours:
        target['type'] = f'mmattn.Attn{head_type}'
    cfg = dict(type='EncoderDecoder', backbone=BACKBONE, decode_head=head, auxiliary_head=AUX,
               train_cfg=dict(), test_cfg=dict(mode='whole'))
    if isinstance(head, list):
        cfg.update(type='CascadeEncoderDecoder', num_stages=2)
    from mmengine.config import ConfigDict
    return ConfigDict(cfg)  # as a config file gives it (the segmentor reads test_cfg.mode)


@pytest.mark.parametrize('head_type', list(HEADS))
def test_mmseg_segmentor_checkpoint_loads_into_ours(head_type, tmp_path):
    from mmengine.runner import load_checkpoint, save_checkpoint
    from mmseg.registry import MODELS

    torch.manual_seed(0)
    ref = MODELS.build(segmentor_cfg(head_type, ours=False))
    randomize_(ref, scale=0.2)
    set_gammas(ref, 0.5)
    path = str(tmp_path / 'mmseg_segmentor.pth')
    # what mmengine's CheckpointHook writes, minus the optimizer
    save_checkpoint(dict(meta=dict(epoch=1, iter=100), state_dict=ref.state_dict()), path)

    ours = MODELS.build(segmentor_cfg(head_type, ours=True))
    head = ours.decode_head[-1] if head_type == 'OCRHead' else ours.decode_head
    assert type(head).__name__ == f'Attn{head_type}'
    load_checkpoint(ours, path, map_location='cpu', strict=True)  # raises on any key mismatch

    ref.double(), ours.double()
    gen = torch.Generator().manual_seed(1)
    inputs = torch.randn(2, 3, 40, 56, generator=gen, dtype=torch.float64)
    ref.eval(), ours.eval()
    with torch.no_grad():
        assert_close(ours(inputs, mode='tensor'), ref(inputs, mode='tensor'))
        expected = ref.predict(inputs)
        actual = ours.predict(inputs)
    for e, a in zip(expected, actual):
        assert_close(a.seg_logits.data, e.seg_logits.data)
        assert torch.equal(a.pred_sem_seg.data, e.pred_sem_seg.data)

    samples = data_samples(2, (10, 14), 5)  # labels at the input's 40 x 56
    losses = []
    for model in (ref, ours):
        model.train()
        torch.manual_seed(3)
        losses.append(model(inputs, samples, mode='loss'))
    assert sorted(losses[0]) == sorted(losses[1])
    for k in losses[0]:
        assert_close(losses[1][k], losses[0][k], rtol=1e-9, atol=1e-11, msg=k)


def test_our_checkpoint_reloads_into_ours(tmp_path):
    from mmengine.runner import load_checkpoint, save_checkpoint
    from mmseg.registry import MODELS
    ours = MODELS.build(segmentor_cfg('DAHead', ours=True))
    set_gammas(ours, 0.25)
    path = str(tmp_path / 'ours.pth')
    save_checkpoint(dict(meta=dict(), state_dict=ours.state_dict()), path)
    again = MODELS.build(segmentor_cfg('DAHead', ours=True))
    load_checkpoint(again, path, map_location='cpu', strict=True)
    assert again.decode_head.pam.gamma.item() == pytest.approx(0.25)
