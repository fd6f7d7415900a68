import warnings

import pytest
import torch

from mmattn.models.layers import cpu_kernels, fast_paths
from mmattn.models.layers.cpu_kernels import CompiledKernel
from mmattn.models.spatial import SimAM
from tests.helpers import assert_close


def simam_reference(x, e_lambda):
    """SimAM written out channel by channel, n = H * W - 1."""
    out = torch.empty_like(x)
    n = x.shape[2] * x.shape[3] - 1
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            v = x[i, c]
            d = (v - v.mean()) ** 2
            energy = d / (4 * (d.sum() / n + e_lambda)) + 0.5
            out[i, c] = v * torch.sigmoid(energy)
    return out


@pytest.mark.parametrize('e_lambda', [1e-4, 0.1])
@pytest.mark.parametrize('hw', [(5, 7), (1, 5), (2, 1), (8, 8)])
def test_simam_matches_formula(e_lambda, hw):
    m = SimAM(6, e_lambda=e_lambda)
    x = torch.randn(2, 6, *hw, dtype=torch.float64)
    assert_close(m(x), simam_reference(x, e_lambda))


def test_simam_single_position():
    """At 1x1, n = 0: the module clamps n to 1, so y = 0.5 and out = x * sigmoid(0.5)."""
    x = torch.randn(3, 4, 1, 1, dtype=torch.float64, requires_grad=True)
    out = SimAM(4)(x)
    assert_close(out, x * torch.sigmoid(torch.tensor(0.5, dtype=torch.float64)))
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_simam_initial_state():
    m = SimAM(64)
    assert m.e_lambda == 1e-4
    assert len(list(m.parameters())) == 0 and len(list(m.buffers())) == 0
    with pytest.raises(ValueError):
        SimAM(64, e_lambda=0)


def plain_simam(x, e_lambda):
    """The module's plain formula (the fast paths off)."""
    with fast_paths(False):
        return SimAM(x.shape[1], e_lambda=e_lambda)(x)


# -- the compiled kernels (mmattn.models.layers.cpu_kernels.simam) ---------------------------
@pytest.fixture
def fused_small(monkeypatch):
    """Reach the compiled kernels with small inputs, and count the calls that reach them."""
    calls = {'forward': 0, 'backward': 0}

    def counted(kernel, key):
        def call(*args):
            calls[key] += 1
            return kernel(*args)
        return call

    kernels = cpu_kernels.simam_forward_kernel, cpu_kernels.simam_backward_kernel
    monkeypatch.setattr(cpu_kernels, 'SIMAM_MIN_ELEMENTS', 0)
    monkeypatch.setattr(cpu_kernels, 'simam_forward_kernel', counted(kernels[0], 'forward'))
    monkeypatch.setattr(cpu_kernels, 'simam_backward_kernel', counted(kernels[1], 'backward'))
    with fast_paths(True):
        yield calls
    assert all(k.failed is None for k in kernels), (
        'torch.compile failed: the fused path fell back to the plain formula')


@pytest.mark.parametrize('shape', [(2, 3, 5, 7), (2, 3, 1, 1), (2, 3, 4, 1)])
def test_fused_simam_matches_formula_and_gradients(fused_small, shape):
    """Output and input gradient (the hand-derived backward) equal the written-out formula and
    autograd's gradient of it, in float64; 1x1 and Hx1 maps included."""
    gen = torch.Generator().manual_seed(sum(shape))
    x = (torch.randn(*shape, generator=gen, dtype=torch.float64) * 2 + 0.5).requires_grad_()
    gy = torch.randn(*shape, generator=gen, dtype=torch.float64)
    m = SimAM(3, e_lambda=0.1)
    out = m(x)
    (grad,) = torch.autograd.grad(out, x, gy)
    assert fused_small == {'forward': 1, 'backward': 1}

    x_ref = x.detach().clone().requires_grad_()
    # the written-out reference divides by n = 0 at 1x1, where the module clamps n to 1
    reference = simam_reference if shape[2] * shape[3] > 1 else plain_simam
    expected = reference(x_ref, 0.1)
    (grad_ref,) = torch.autograd.grad(expected, x_ref, gy)
    assert_close(out, expected)
    assert_close(grad, grad_ref)


def test_fused_simam_gradcheck(fused_small):
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: cpu_kernels.simam(t, 1e-4), (x,))
    assert fused_small['backward'] > 0


def test_fused_simam_float32_and_inference(fused_small):
    """float32: within rounding of the plain formula; without autograd the forward kernel
    alone runs and gives the same output."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 8, 9, 11, generator=gen).requires_grad_()
    gy = torch.randn(2, 8, 9, 11, generator=gen)
    out = cpu_kernels.simam(x, 1e-4)
    (grad,) = torch.autograd.grad(out, x, gy)
    x_ref = x.detach().clone().requires_grad_()
    expected = plain_simam(x_ref, 1e-4)
    (grad_ref,) = torch.autograd.grad(expected, x_ref, gy)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(cpu_kernels.simam(x, 1e-4), expected.detach(),
                                   rtol=1e-5, atol=1e-6)
    assert fused_small == {'forward': 2, 'backward': 1}


def test_simam_switched_off_and_traced_use_the_plain_formula(fused_small):
    x = torch.randn(1, 3, 6, 6)
    with fast_paths(False):
        SimAM(3)(x)
    graph = torch.jit.trace(SimAM(3), x, check_trace=False).graph
    assert fused_small['forward'] == 0
    assert 'aten::sigmoid' in str(graph)
    SimAM(3)(x)
    assert fused_small['forward'] == 1


def test_small_maps_take_the_plain_formula(monkeypatch):
    """Below SIMAM_MIN_ELEMENTS a kernel call's overhead outweighs what it saves."""
    called = []
    monkeypatch.setattr(cpu_kernels, 'simam', lambda *args: called.append(args))
    x = torch.randn(1, 4, 8, 8)
    assert x.numel() < cpu_kernels.SIMAM_MIN_ELEMENTS
    with fast_paths(True):
        SimAM(4)(x)
        assert not called
        SimAM(4)(torch.randn(1, 4, 128, 128))
    assert len(called) == 1


def test_compiled_kernel_falls_back_with_a_warning(monkeypatch):
    """Where torch.compile cannot build a kernel (no C++ compiler), the function runs eagerly
    after one warning that names the module."""
    def broken(fn, **kwargs):
        def raise_(*args):
            raise torch._dynamo.exc.TorchDynamoException('no working C++ compiler')
        return raise_

    monkeypatch.setattr(torch, 'compile', broken)
    kernel = CompiledKernel(lambda t: t * 2, 'SimAM')
    x = torch.arange(4.)
    with pytest.warns(RuntimeWarning, match='SimAM: torch.compile could not build'):
        assert torch.equal(kernel(x), x * 2)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert torch.equal(kernel(x), x * 2)
    assert isinstance(kernel.failed, torch._dynamo.exc.TorchDynamoException)
