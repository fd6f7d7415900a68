"""Build an mmseg head and ours from one config, share the weights, compare what they compute."""
import pytest
import torch

from tests.helpers import assert_close, randomize_, requires_mmseg

# mmseg warns at every head it builds (its build_loss, its CrossEntropyLoss defaults)
MARKS = [requires_mmseg, pytest.mark.filterwarnings('ignore::UserWarning:mmseg.*')]

SIZES = [(8, 8), (5, 11), (13, 6)]  # square, wide, tall; 5 rows < the pyramid's 8 bins


def build_pair(mmseg_type, cfg, seed=0, dtype=torch.float64, scale=0.5):
    """(mmseg's head with random weights, ours with mmseg's state dict loaded strictly).

    The weights are N(0, scale^2) and the attention gammas 1, so that the attention makes a
    visible share of the logits (each head's test checks that it does).
    """
    from mmseg.registry import MODELS as MMSEG_MODELS

    from mmattn.registry import MODELS
    ref = MMSEG_MODELS.build(dict(type=mmseg_type, **cfg))
    ours = MODELS.build(dict(type=f'mmattn.Attn{mmseg_type}', **cfg))
    randomize_(ref, seed=seed, scale=scale)
    set_gammas(ref, 1.0)
    ref.to(dtype)
    ours.to(dtype)
    result = ours.load_state_dict(ref.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    return ref, ours


def features(channels, hw, batch=2, seed=1, dtype=torch.float64, scale=1.0):
    """A backbone's outputs: one (batch, c, H, W) map per entry of ``channels``."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, c, *hw, generator=gen, dtype=dtype) * scale for c in channels]


def data_samples(batch, hw, num_classes, seed=2):
    """SegDataSamples with random labels at 4x the feature size, a few pixels ignored (255)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(seed)
    size = (hw[0] * 4, hw[1] * 4)
    out = []
    for _ in range(batch):
        label = torch.randint(0, num_classes, (1, ) + size, generator=gen)
        label[torch.rand(label.shape, generator=gen) < 0.1] = 255
        sample = SegDataSample(metainfo=dict(img_shape=size, pad_shape=size, ori_shape=size))
        sample.gt_sem_seg = PixelData(data=label)
        out.append(sample)
    return out


def as_tuple(x):
    return x if isinstance(x, tuple) else (x, )


def compare_eval(ref, ours, *args, rtol=1e-10, atol=1e-12):
    """Forward outputs in evaluation mode; returns ours."""
    ref.eval()
    ours.eval()
    with torch.no_grad():
        expected, actual = as_tuple(ref(*args)), as_tuple(ours(*args))
    assert len(expected) == len(actual)
    for i, (e, a) in enumerate(zip(expected, actual)):
        assert e.abs().max() > 1e-3, 'degenerate test: an output is all zero'
        assert_close(a, e, rtol=rtol, atol=atol, msg=f'output {i} differs')
    return actual


def grads_by_name(module):
    return {n: p.grad for n, p in module.named_parameters() if p.grad is not None}


def compare_training(ref, ours, inputs, samples, extra=(), seed=3, rtol=1e-9, atol=1e-11,
                     check_buffers=True):
    """Training losses (with the heads' dropout, under one seed), their gradients with respect
    to every parameter (mmseg's names mapped to ours), and the BN statistics they leave."""
    losses = []
    for head in (ref, ours):
        head.train()
        head.zero_grad()
        torch.manual_seed(seed)
        loss = head.loss(inputs, *extra, samples, dict())
        sum(v for k, v in loss.items() if k.startswith('loss') or '.loss' in k).backward()
        losses.append(loss)
    expected, actual = losses
    assert sorted(expected) == sorted(actual)
    for k in expected:
        assert_close(actual[k], expected[k], rtol=rtol, atol=atol, msg=f'loss {k} differs')
    ref_grads = type(ours).from_mmseg_state_dict(grads_by_name(ref))
    our_grads = grads_by_name(ours)
    assert sorted(ref_grads) == sorted(our_grads)
    for k, g in ref_grads.items():
        assert_close(our_grads[k], g.reshape(our_grads[k].shape), rtol=rtol, atol=atol,
                     msg=f'gradient of {k} differs')
    if check_buffers:
        ref_state = type(ours).from_mmseg_state_dict(ref.state_dict())
        our_state = ours.state_dict()
        buffers = [k for k in our_state if 'running_' in k or 'num_batches' in k]
        assert buffers
        for k in buffers:
            assert_close(our_state[k], ref_state[k], rtol=rtol, atol=atol,
                         msg=f'BN buffer {k} differs after a training step')
    return expected


def set_gammas(module, value=0.7):
    """Non-zero attention gammas (mmcv ``Scale`` or ours), so the attention shows in outputs."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith('gamma') or name.endswith('gamma.scale'):
                p.fill_(value)


def conv_types(ref, ours):
    """{our name of each conv weight: (mmseg's conv class, ours)}, through the key mapping."""
    ref_types = {k: type(m).__name__ for k, m in ref.named_modules()
                 if isinstance(m, torch.nn.Conv2d)}
    names = type(ours).from_mmseg_state_dict({f'{k}.weight': k for k in ref_types})
    ours_types = {k: type(m).__name__ for k, m in ours.named_modules()
                  if isinstance(m, torch.nn.Conv2d)}
    # mmseg's APNB registers its shared key/query conv under both names, as ours does
    assert set(names) == {f'{k}.weight' for k in ours_types}
    return {k[:-len('.weight')]: (ref_types[v], ours_types[k[:-len('.weight')]])
            for k, v in names.items()}
