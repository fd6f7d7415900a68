import pytest
import torch

from mmattn.models.context import DANetCAM, DANetPAM
from mmattn.models.layers import cpu_kernels, fast_paths
from tests.helpers import assert_close, randomize_, requires_mmdet, requires_mmseg
from .context_helpers import (assert_lean_matches_explicit, build_config_backbone,
                              check_backbone_runs, plugins_by_block)


def pam_reference(m, x):
    """PAM written out per sample: softmax over keys of q_i . k_j (no scale)."""
    n, c, h, w = x.shape
    out = torch.empty_like(x)
    for i in range(n):
        xi = x[i].reshape(c, h * w)
        q = m.query_conv.weight.flatten(1) @ xi + m.query_conv.bias[:, None]
        k = m.key_conv.weight.flatten(1) @ xi + m.key_conv.bias[:, None]
        v = m.value_conv.weight.flatten(1) @ xi + m.value_conv.bias[:, None]
        energy = q.t() @ k  # (query, key)
        attn = torch.exp(energy - energy.amax(1, keepdim=True))
        attn = attn / attn.sum(1, keepdim=True)
        out[i] = (m.gamma * (v @ attn.t()) + xi).reshape(c, h, w)
    return out


def cam_reference(m, x):
    """CAM written out per sample: softmax over rowmax(X X^T) - X X^T."""
    n, c, h, w = x.shape
    out = torch.empty_like(x)
    for i in range(n):
        xi = x[i].reshape(c, h * w)
        energy = xi @ xi.t()
        energy_new = energy.amax(1, keepdim=True) - energy
        attn = torch.exp(energy_new - energy_new.amax(1, keepdim=True))
        attn = attn / attn.sum(1, keepdim=True)
        out[i] = (m.gamma * (attn @ xi) + xi).reshape(c, h, w)
    return out


@pytest.mark.parametrize('lean', [True, False])
@pytest.mark.parametrize('channels', [64, 12, 4])
def test_pam_matches_formula(channels, lean):
    m = randomize_(DANetPAM(channels, lean=lean), scale=0.3).double().eval()
    x = torch.randn(2, channels, 5, 7, dtype=torch.float64)
    with torch.no_grad():
        assert_close(m(x), pam_reference(m, x))


def test_cam_matches_formula():
    m = randomize_(DANetCAM(24)).double().eval()
    x = torch.randn(3, 24, 5, 6, dtype=torch.float64) * 0.3
    with torch.no_grad():
        assert_close(m(x), cam_reference(m, x))


def test_pam_lean_equals_explicit(monkeypatch):
    torch.manual_seed(0)
    m = randomize_(DANetPAM(32), scale=0.3)
    assert_lean_matches_explicit(m, torch.randn(2, 32, 9, 11) * 0.5, monkeypatch)


def test_pam_initial_state():
    m = DANetPAM(512)
    assert m.query_conv.weight.shape == (64, 512, 1, 1) and m.query_conv.bias is not None
    assert m.key_conv.weight.shape == (64, 512, 1, 1) and m.key_conv.bias is not None
    assert m.value_conv.weight.shape == (512, 512, 1, 1) and m.value_conv.bias is not None
    assert isinstance(m.gamma, torch.nn.Parameter) and m.gamma.shape == (1, )
    assert m.gamma.item() == 0 and m.lean
    # the authors' parameter names, so their checkpoints load
    assert set(m.state_dict()) == {
        'query_conv.weight', 'query_conv.bias', 'key_conv.weight', 'key_conv.bias',
        'value_conv.weight', 'value_conv.bias', 'gamma'
    }
    x = torch.randn(2, 512, 3, 4)
    assert torch.equal(m(x), x)
    assert DANetPAM(4).key_channels == 1


@pytest.mark.parametrize('channels,kwargs,expected', [
    (512, dict(), 64),                                    # the authors' C/8
    (512, dict(reduction=4), 128),
    (512, dict(key_channels=64), 64),
    (48, dict(key_channels=5), 5),                        # not C // r for any integer r
    (16, dict(key_channels=24), 24),                      # wider than the input, as mmseg allows
    (512, dict(reduction=2, key_channels=40), 40),        # key_channels wins over reduction
])
def test_pam_key_channels_set_the_conv_widths(channels, kwargs, expected):
    m = DANetPAM(channels, **kwargs)
    assert m.key_channels == expected
    assert m.query_conv.weight.shape == (expected, channels, 1, 1)
    assert m.key_conv.weight.shape == (expected, channels, 1, 1)
    assert m.value_conv.weight.shape == (channels, channels, 1, 1)
    assert f'key_channels={expected}' in repr(m)
    # and the module computes the PAM at that width
    m = randomize_(m, scale=0.3).double().eval()
    x = torch.randn(2, channels, 4, 3, dtype=torch.float64)
    with torch.no_grad():
        assert_close(m(x), pam_reference(m, x))


@pytest.mark.parametrize('kwargs,match', [
    (dict(key_channels=0), 'key_channels must be a positive int.*got 0'),
    (dict(key_channels=-8), 'key_channels must be a positive int.*got -8'),
    (dict(key_channels=7.5), 'key_channels must be a positive int.*got 7.5'),
    (dict(key_channels=True), 'key_channels=True is a bool, but key_channels is a number'),
    (dict(key_channels='64'), "key_channels must be a positive int.*got '64'"),
    (dict(reduction=0), 'reduction must be a positive number.*got 0'),
    (dict(reduction=None), 'reduction must be a positive number.*got None'),
])
def test_pam_bad_widths_error_clearly(kwargs, match):
    with pytest.raises(ValueError, match='DANetPAM: ' + match):
        DANetPAM(64, **kwargs)


@requires_mmseg
@pytest.mark.parametrize('key_channels', [4, 5])
def test_pam_key_channels_matches_mmseg_pam_channels(key_channels):
    """mmseg's PAM(in_channels, channels) takes its query/key width directly: the same here."""
    from mmseg.models.decode_heads.da_head import PAM
    ours = randomize_(DANetPAM(24, key_channels=key_channels)).double().eval()
    ref = PAM(24, key_channels).double().eval()
    for theirs, mine in [(ref.query_project, ours.query_conv), (ref.key_project, ours.key_conv),
                         (ref.value_project, ours.value_conv)]:
        theirs.load_state_dict(mine.state_dict())
    with torch.no_grad():
        ref.gamma.scale.copy_(ours.gamma.reshape(ref.gamma.scale.shape))
    x = torch.randn(2, 24, 5, 6, dtype=torch.float64)
    with torch.no_grad():
        assert_close(ours(x), ref(x))


def test_cam_initial_state():
    m = DANetCAM(64)
    assert [n for n, _ in m.named_parameters()] == ['gamma'] and m.gamma.item() == 0
    x = torch.randn(2, 64, 3, 4)
    assert torch.equal(m(x), x)


@pytest.mark.parametrize('cls', [DANetPAM, DANetCAM])
def test_gamma_learns_from_zero(cls):
    # gamma starts at 0 and must still receive a gradient (it is the only way out of identity)
    m = randomize_(cls(16))
    with torch.no_grad():
        m.gamma.zero_()
    x = torch.randn(2, 16, 5, 4)
    target = torch.randn(2, 16, 5, 4)
    (m(x) * target).sum().backward()
    assert m.gamma.grad is not None and m.gamma.grad.abs().item() > 0


def test_gamma_zero_survives_init_weights():
    m = DANetPAM(16, init_cfg=dict(type='Constant', val=1, layer='Conv2d'))
    with torch.no_grad():
        m.gamma.fill_(3)
    m.init_weights()
    assert m.gamma.item() == 0


def test_cam_half_precision_does_not_overflow():
    # sum over 64*64 positions of x^2 ~ 16 exceeds float16's range (65504)
    m = randomize_(DANetCAM(8))
    x = torch.randn(1, 8, 64, 64) * 4
    with torch.no_grad():
        expected = m(x)
        with torch.autocast('cpu', dtype=torch.float16):
            got = m(x)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.float(), expected, rtol=1e-2, atol=1e-2)


@requires_mmseg
@pytest.mark.parametrize('lean', [True, False])
def test_pam_matches_mmseg(lean):
    from mmseg.models.decode_heads.da_head import PAM
    ours = randomize_(DANetPAM(32, lean=lean)).double().eval()
    ref = PAM(32, 4).double().eval()
    for theirs, mine in [(ref.query_project, ours.query_conv), (ref.key_project, ours.key_conv),
                         (ref.value_project, ours.value_conv)]:
        theirs.load_state_dict(mine.state_dict())
    with torch.no_grad():
        ref.gamma.scale.copy_(ours.gamma.reshape(ref.gamma.scale.shape))
    x = torch.randn(2, 32, 6, 7, dtype=torch.float64)
    with torch.no_grad():
        assert_close(ours(x), ref(x))


@requires_mmseg
def test_cam_matches_mmseg():
    from mmseg.models.decode_heads.da_head import CAM
    ours = randomize_(DANetCAM(16)).double().eval()
    ref = CAM().double().eval()
    with torch.no_grad():
        ref.gamma.scale.copy_(ours.gamma.reshape(ref.gamma.scale.shape))
    x = torch.randn(2, 16, 6, 7, dtype=torch.float64) * 0.3
    with torch.no_grad():
        assert_close(ours(x), ref(x))


@requires_mmdet
@pytest.mark.parametrize('abbr,cls', [('danet-pam', DANetPAM), ('danet-cam', DANetCAM)])
def test_danet_config_placement(abbr, cls):
    net = build_config_backbone(abbr)
    found = plugins_by_block(net, cls, position='after_block')
    assert list(found) == [(3, 2)]  # once, on c5's output
    assert not plugins_by_block(net, cls)  # none in the residual branch
    (m, ) = found[(3, 2)]
    assert m.in_channels == 2048 and m.gamma.item() == 0
    if cls is DANetPAM:
        assert m.key_channels == 256 and m.lean
    check_backbone_runs(net)


def _subnormal(t):
    return ((t != 0) & (t.abs() < torch.finfo(t.dtype).tiny)).sum().item()


def test_cam_flushes_subnormal_probabilities_to_rounding(monkeypatch):
    """On a real-sized map CAM's softmax has subnormal probabilities (slow on CPUs); ours sets
    them and their gradient entries to 0, and its output and input gradient equal the plain
    formula's to float32 rounding."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 64, 24, 24, generator=gen).requires_grad_()
    gy = torch.randn(2, 64, 24, 24, generator=gen)
    m = DANetCAM(64)
    with torch.no_grad():
        m.gamma.fill_(0.7)

    feats = x.detach().flatten(2)
    energy = torch.bmm(feats, feats.transpose(1, 2))
    plain_attention = (energy.amax(-1, keepdim=True) - energy).softmax(-1)
    assert _subnormal(plain_attention) > 0, 'the input should produce subnormal probabilities'

    seen = []  # the probabilities, then the energies' gradient after the flush

    flushed_softmax = cpu_kernels.flushed_softmax

    def spy(e, dim=-1):
        p = flushed_softmax(e, dim)
        e.register_hook(seen.append)  # runs after flushed_softmax's own hook
        seen.append(p)
        return p

    monkeypatch.setattr(cpu_kernels, 'flushed_softmax', spy)
    with fast_paths(True):
        out = m(x)
    (grad,) = torch.autograd.grad(out, x, gy)
    assert len(seen) == 2 and _subnormal(seen[0]) == 0 and _subnormal(seen[1]) == 0

    x_ref = x.detach().clone().requires_grad_()
    f = x_ref.flatten(2)
    e = torch.bmm(f, f.transpose(1, 2))
    ref = 0.7 * torch.bmm((e.amax(-1, keepdim=True) - e).softmax(-1), f).view_as(x_ref) + x_ref
    (grad_ref,) = torch.autograd.grad(ref, x_ref, gy)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-4, atol=1e-4)
