import math

import pytest
import torch
from mmengine.model import BaseModule

from mmattn.models.context import NonLocal
from tests.helpers import assert_close, randomize_, requires_mmdet
from .context_helpers import (assert_lean_matches_explicit, build_config_backbone,
                              check_backbone_runs, plugins_by_block, train_with_frozen_norms)


def conv1x1(x, conv):
    w = conv.weight.flatten(1)
    y = torch.einsum('oc,nchw->nohw', w, x)
    return y if conv.bias is None else y + conv.bias[None, :, None, None]


def maxpool2_ceil(x):
    """2x2 max-pooling of stride 2 whose last window may hang over an odd side."""
    n, c, h, w = x.shape
    x = torch.nn.functional.pad(x, (0, w % 2, 0, h % 2), value=-math.inf)
    return x.reshape(n, c, (h + 1) // 2, 2, (w + 1) // 2, 2).amax(dim=(3, 5))


def batchnorm_eval(y, bn):
    inv = (bn.running_var + bn.eps).rsqrt()
    return ((y - bn.running_mean[None, :, None, None]) * inv[None, :, None, None]
            * bn.weight[None, :, None, None] + bn.bias[None, :, None, None])


def nonlocal_reference(m, x):
    """The block written out from the paper / the authors' code, one sample at a time."""
    src = maxpool2_ceil(x) if m.sub_sample else x
    g = conv1x1(src, m.g).flatten(2)  # (N, C', M)
    outs = []
    for i in range(x.shape[0]):
        if m.mode == 'gaussian':
            theta, phi = x[i].flatten(1), src[i].flatten(1)
        else:
            theta = conv1x1(x[i:i + 1], m.theta)[0].flatten(1)  # (C', L)
            phi = conv1x1(src[i:i + 1], m.phi)[0].flatten(1)  # (C', M)
        n_keys = phi.shape[1]
        if m.mode == 'embedded_gaussian':
            energy = theta.t() @ phi
            if m.use_scale:
                energy = energy / math.sqrt(m.inter_channels)
            f = torch.softmax(energy, dim=1)
        elif m.mode == 'gaussian':
            f = torch.softmax(theta.t() @ phi, dim=1)
        elif m.mode == 'dot_product':
            f = theta.t() @ phi / n_keys
        else:
            w = m.concat_project.weight.flatten()
            f = torch.empty(theta.shape[1], n_keys, dtype=x.dtype)
            for a in range(theta.shape[1]):
                for b in range(n_keys):
                    f[a, b] = torch.relu(w @ torch.cat([theta[:, a], phi[:, b]])) / n_keys
        outs.append((g[i] @ f.t()).reshape(-1, *x.shape[2:]))
    y = conv1x1(torch.stack(outs), m.conv_out)
    if m.norm is not None:
        y = batchnorm_eval(y, m.norm)
    return x + y


MODES = ['embedded_gaussian', 'gaussian', 'dot_product', 'concatenation']


def relu_active_fraction(m, x):
    """The share of pairs (i, j) with w . [theta_i, phi_j] > 0 in the concatenation form: a
    test with none (or all) of them active would not test the ReLU."""
    src = m.pool(x) if m.pool is not None else x
    theta, phi = conv1x1(x, m.theta).flatten(2), conv1x1(src, m.phi).flatten(2)
    w = m.concat_project.weight.flatten()
    a = torch.einsum('c,ncl->nl', w[:m.inter_channels], theta)
    b = torch.einsum('c,ncm->nm', w[m.inter_channels:], phi)
    return (a[:, :, None] + b[:, None, :] > 0).double().mean().item()


@pytest.mark.parametrize('lean', [True, False])
@pytest.mark.parametrize('sub_sample', [False, True])
@pytest.mark.parametrize('mode', MODES)
def test_nonlocal_matches_formula(mode, sub_sample, lean):
    m = randomize_(NonLocal(12, mode=mode, sub_sample=sub_sample, lean=lean)).double().eval()
    x = torch.randn(2, 12, 5, 7, dtype=torch.float64)
    with torch.no_grad():
        if mode == 'concatenation':
            assert 0.1 < relu_active_fraction(m, x) < 0.9
        assert_close(m(x), nonlocal_reference(m, x))


@pytest.mark.parametrize('use_scale', [True, False])
def test_nonlocal_scale(use_scale):
    # the scale is (C/2)^-0.5 of the inner width, not of C; a wrong factor changes the softmax
    m = randomize_(NonLocal(32, use_scale=use_scale)).double().eval()
    x = torch.randn(1, 32, 4, 6, dtype=torch.float64)
    with torch.no_grad():
        assert_close(m(x), nonlocal_reference(m, x))
        other = NonLocal(32, use_scale=not use_scale).double().eval()
        other.load_state_dict(m.state_dict())
        assert (other(x) - m(x)).abs().max() > 1e-3


def test_nonlocal_pools_input_before_phi_and_g():
    # the authors max-pool x, then apply phi and g; pooling after the convs differs
    m = randomize_(NonLocal(8, sub_sample=True)).double().eval()
    x = torch.randn(1, 8, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        got = m(x)
        pool, m.pool = m.pool, None  # the popular port: pool the outputs of phi and g
        hooks = [conv.register_forward_hook(lambda mod, i, o: pool(o)) for conv in (m.phi, m.g)]
        pooled_after = m(x)
        for h in hooks:
            h.remove()
        m.pool = pool
    assert (got - pooled_after).abs().max() > 1e-4
    with torch.no_grad():
        assert_close(got, nonlocal_reference(m, x))


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('sub_sample', [False, True])
def test_nonlocal_lean_equals_explicit(mode, sub_sample, monkeypatch):
    torch.manual_seed(0)
    m = randomize_(NonLocal(16, mode=mode, sub_sample=sub_sample), scale=0.3)
    x = torch.randn(2, 16, 9, 11) * 0.5
    if mode == 'concatenation':
        with torch.no_grad():  # random biases would put every pair on one side of the ReLU
            m.theta.bias.zero_()
            m.phi.bias.zero_()
            assert 0.1 < relu_active_fraction(m, x) < 0.9
    assert_lean_matches_explicit(m, x, monkeypatch)


def test_nonlocal_initial_state():
    m = NonLocal(512)
    assert m.inter_channels == 256
    for conv in (m.theta, m.phi, m.g):
        assert conv.weight.shape == (256, 512, 1, 1)
        assert 0.009 < conv.weight.std() < 0.011 and not conv.bias.any()
    assert m.conv_out.weight.shape == (512, 256, 1, 1) and m.conv_out.bias is not None
    assert isinstance(m.norm, torch.nn.BatchNorm2d)
    assert not m.norm.weight.any() and not m.norm.bias.any()
    assert m.pool is None and m.mode == 'embedded_gaussian' and m.use_scale
    # the block starts as the identity, in training and in evaluation
    x = torch.randn(2, 512, 4, 5)
    assert torch.equal(m.train()(x), x) and torch.equal(m.eval()(x), x)
    # widths never reach 0; the Gaussian form has no theta/phi; concatenation has w (no bias)
    assert NonLocal(1).inter_channels == 1
    gauss = NonLocal(8, mode='gaussian')
    assert not hasattr(gauss, 'theta') and not hasattr(gauss, 'phi')
    cat = NonLocal(8, mode='concatenation')
    assert cat.concat_project.weight.shape == (1, 8, 1, 1) and cat.concat_project.bias is None
    assert NonLocal(8, sub_sample=True).pool.kernel_size == 2
    # without a norm the output conv starts at zero instead
    plain = NonLocal(16, norm_cfg=None)
    assert plain.norm is None and not plain.conv_out.weight.any()
    with pytest.raises(ValueError, match='mode'):
        NonLocal(8, mode='softmax')


def test_nonlocal_zero_init_survives_init_weights():
    m = NonLocal(16, init_cfg=[dict(type='Kaiming', layer='Conv2d'),
                               dict(type='Constant', val=1, layer='_BatchNorm')])
    m.init_weights()
    assert not m.norm.weight.any()

    # as a child of a backbone whose init_cfg covers every BN
    class Net(BaseModule):

        def __init__(self):
            super().__init__(init_cfg=dict(type='Constant', val=1, layer='_BatchNorm'))
            self.block = NonLocal(16)

    net = Net()
    net.init_weights()
    assert not net.block.norm.weight.any()


@pytest.mark.parametrize('mode', MODES)
def test_nonlocal_matches_mmcv(mode):
    """mmcv's NonLocal2d computes the same block (without sub-sampling, which mmcv applies
    after the convs); its output conv has no bias before the BN."""
    from mmcv.cnn import NonLocal2d
    ours = randomize_(NonLocal(16, mode=mode)).double().eval()
    with torch.no_grad():
        ours.conv_out.bias.zero_()
    ref = NonLocal2d(16, mode=mode, norm_cfg=dict(type='BN')).double().eval()
    pairs = [(ref.g.conv, ours.g), (ref.conv_out.conv, ours.conv_out),
             (ref.conv_out.bn, ours.norm)]
    if mode != 'gaussian':
        pairs += [(ref.theta.conv, ours.theta), (ref.phi.conv, ours.phi)]
    if mode == 'concatenation':
        pairs.append((ref.concat_project.conv, ours.concat_project))
    for theirs, mine in pairs:
        state = mine.state_dict()
        if mine is ours.conv_out:
            del state['bias']  # zero, see above
        theirs.load_state_dict(state)
    x = torch.randn(2, 16, 5, 6, dtype=torch.float64)
    with torch.no_grad():
        assert_close(ours(x), ref(x))


@requires_mmdet
def test_nonlocal_config_authors_placement():
    net = build_config_backbone('nonlocal')
    # on the blocks' outputs (after the sum and ReLU), as the authors add them
    found = plugins_by_block(net, NonLocal, position='after_block')
    assert sorted(found) == [(1, 1), (1, 3), (2, 1), (2, 3), (2, 5)]  # every other, res3-res4
    assert not plugins_by_block(net, NonLocal)  # none left in the residual branch
    for mods in found.values():
        assert len(mods) == 1
        m = mods[0]
        assert (m.mode, m.use_scale, m.sub_sample, m.inter_channels) == (
            'embedded_gaussian', True, True, m.in_channels // 2)
    check_backbone_runs(net)


@pytest.mark.parametrize('mode', ['embedded_gaussian', 'gaussian'])
def test_nonlocal_lean_under_bfloat16_autocast(mode, monkeypatch):
    """Under bfloat16 autocast the lean path is as close to the float32 result as the explicit
    path under the same autocast (its softmax statistics are kept in float32)."""
    from mmattn.models.layers import attention
    monkeypatch.setattr(attention, 'BLOCK_ELEMENTS', 50)
    monkeypatch.setattr(attention, 'MIN_ROWS', 1)
    torch.manual_seed(0)
    m = train_with_frozen_norms(randomize_(NonLocal(16, mode=mode), scale=0.3))
    x = torch.randn(2, 16, 9, 11) * 0.5

    def run(lean, autocast):
        m.lean = lean
        xi = x.clone().requires_grad_()
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
            out = m(xi)
        out.float().sum().backward()
        return out.float().detach(), xi.grad

    ref = run(False, False)
    lean, explicit = run(True, True), run(False, True)
    for got, other, expected in zip(lean, explicit, ref):
        err = (got - expected).abs().max()
        assert err <= 2 * (other - expected).abs().max() + 1e-3 * expected.abs().max()
        assert err < 5e-2 * expected.abs().max()
