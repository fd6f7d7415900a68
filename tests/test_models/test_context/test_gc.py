import math

import pytest
import torch

from mmattn.models.context import GlobalContext
from tests.helpers import assert_close, randomize_, requires_mmdet
from .context_helpers import build_config_backbone, check_backbone_runs, plugins_by_block

FUSIONS = [('channel_add', ), ('channel_mul', ), ('channel_add', 'channel_mul')]


def gc_reference(m, x):
    """The GC block written out: attention pooling, bottleneck transform, fusion."""
    n, c, h, w = x.shape
    flat = x.reshape(n, c, h * w)
    if m.pooling_type == 'att':
        logits = torch.einsum('c,ncp->np', m.conv_mask.weight.flatten(), flat)
        logits = logits + m.conv_mask.bias
        weights = torch.exp(logits - logits.amax(1, keepdim=True))
        weights = weights / weights.sum(1, keepdim=True)
        context = torch.einsum('ncp,np->nc', flat, weights)
    else:
        context = flat.mean(2)

    def transform(seq):
        conv1, ln, _, conv2 = seq
        t = context @ conv1.weight.flatten(1).t() + conv1.bias
        mu = t.mean(1, keepdim=True)
        var = ((t - mu)**2).mean(1, keepdim=True)
        t = (t - mu) / torch.sqrt(var + ln.eps) * ln.weight.flatten() + ln.bias.flatten()
        t = torch.clamp(t, min=0)
        return t @ conv2.weight.flatten(1).t() + conv2.bias

    out = x
    if m.channel_mul_conv is not None:
        out = out * (1 / (1 + torch.exp(-transform(m.channel_mul_conv))))[:, :, None, None]
    if m.channel_add_conv is not None:
        out = out + transform(m.channel_add_conv)[:, :, None, None]
    return out


@pytest.mark.parametrize('fusion_types', FUSIONS)
@pytest.mark.parametrize('pooling_type', ['att', 'avg'])
def test_gc_matches_formula(pooling_type, fusion_types):
    m = GlobalContext(64, ratio=1 / 4, pooling_type=pooling_type, fusion_types=fusion_types)
    m = randomize_(m).double().eval()
    x = torch.randn(3, 64, 5, 7, dtype=torch.float64)
    with torch.no_grad():
        assert_close(m(x), gc_reference(m, x))


@pytest.mark.parametrize('fusion_types', FUSIONS)
@pytest.mark.parametrize('pooling_type', ['att', 'avg'])
def test_gc_matches_mmcv_context_block(pooling_type, fusion_types):
    """Same weights (loaded by name, strictly, in both directions), same outputs."""
    from mmcv.cnn import ContextBlock
    ours = randomize_(GlobalContext(48, 1 / 16, pooling_type, fusion_types)).double().eval()
    ref = ContextBlock(48, 1 / 16, pooling_type, fusion_types).double().eval()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 48, 6, 5, dtype=torch.float64)
    with torch.no_grad():
        assert_close(ours(x), ref(x))
    randomize_(ref, seed=3)
    ours.load_state_dict(ref.state_dict())
    with torch.no_grad():
        assert_close(ours(x), ref(x))


def test_gc_attention_pooling_calls_its_conv():
    """The C -> 1 mask conv is called, so a hook on it (the attention-map tool's tap) sees
    it, and a trace shows it. Same gradients with and without the hook, float64."""
    m = randomize_(GlobalContext(16, ratio=0.5), scale=0.3).double()
    x = torch.randn(2, 16, 5, 6, dtype=torch.float64)
    gy = torch.randn_like(x)
    results = []
    for hooked in (False, True):
        calls = []
        handle = m.conv_mask.register_forward_hook(lambda *args: calls.append(1)) if hooked \
            else None
        xi = x.clone().requires_grad_()
        m.zero_grad()
        m(xi).backward(gy)
        if handle is not None:
            handle.remove()
        assert len(calls) == int(hooked)
        results.append((xi.grad, m.conv_mask.weight.grad.clone(), m.conv_mask.bias.grad.clone()))
    for a, b in zip(*results):
        assert_close(a, b)
    with torch.no_grad():
        kinds = {n.kind() for n in torch.jit.trace(m.eval(), x).inlined_graph.nodes()}
    assert 'aten::baddbmm' not in kinds and 'aten::_convolution' in kinds


def test_gc_initial_state():
    m = GlobalContext(2048)
    assert m.planes == 128 and m.pooling_type == 'att' and m.fusion_types == ('channel_add', )
    conv1, norm, act, conv2 = m.channel_add_conv
    assert conv1.weight.shape == (128, 2048, 1, 1) and conv1.bias is not None
    assert isinstance(norm, torch.nn.LayerNorm) and tuple(norm.normalized_shape) == (128, 1, 1)
    assert isinstance(act, torch.nn.ReLU)
    # the last conv starts at zero: the block starts as the identity (add fusion)
    assert not conv2.weight.any() and not conv2.bias.any()
    x = torch.randn(2, 2048, 3, 4)
    assert torch.equal(m(x), x)
    # the mask conv is Kaiming-initialised (fan_in, normal), bias 0
    std = m.conv_mask.weight.std().item()
    assert abs(std - math.sqrt(2 / 2048)) < 0.1 * math.sqrt(2 / 2048)
    assert not m.conv_mask.bias.any()
    # mul fusion starts at x * sigmoid(0) = x / 2, as the authors'
    mul = GlobalContext(16, fusion_types=('channel_mul', ))
    assert mul.channel_add_conv is None and not mul.channel_mul_conv[-1].weight.any()
    assert_close(mul(x[:, :16]), x[:, :16] * 0.5)
    # ratio 1/4; the width never reaches 0; avg pooling has no mask conv; short names work
    assert GlobalContext(256, ratio=1 / 4).planes == 64
    assert GlobalContext(8).planes == 1
    assert not hasattr(GlobalContext(16, pooling_type='avg'), 'conv_mask')
    assert GlobalContext(16, fusion_types=('add', 'mul')).fusion_types == ('channel_add',
                                                                           'channel_mul')
    with pytest.raises(ValueError):
        GlobalContext(16, fusion_types=('concat', ))
    with pytest.raises(ValueError):
        GlobalContext(16, pooling_type='max')


def test_gc_zero_init_survives_init_weights():
    m = GlobalContext(32, init_cfg=dict(type='Kaiming', layer='Conv2d'))
    m.init_weights()
    assert not m.channel_add_conv[-1].weight.any()


def test_gc_batchnorm_transform_at_batch_one():
    # a BN instead of the LN (norm_cfg) sees one value per channel at batch size 1
    m = GlobalContext(32, norm_cfg=dict(type='BN')).train()
    assert isinstance(m.channel_add_conv[1], torch.nn.BatchNorm2d)
    out = m(torch.randn(1, 32, 4, 4))
    assert torch.isfinite(out).all()


@requires_mmdet
def test_gc_config_authors_placement():
    net = build_config_backbone('gc')
    found = plugins_by_block(net, GlobalContext)
    expected = [(i, j) for i, n in enumerate((3, 4, 6, 3)) for j in range(n) if i > 0]
    assert sorted(found) == expected  # every block of c3-c5
    for (m, ) in found.values():
        assert m.planes == m.in_channels // 16 and m.pooling_type == 'att'
        assert m.fusion_types == ('channel_add', )
    check_backbone_runs(net)
