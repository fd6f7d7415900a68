"""Every registered attention module on a CUDA GPU, against a float64 CPU reference.

For each module (generated from the registry): the output and the gradients (input and every
parameter) on CUDA in float32 and under autocast (bfloat16, float16), against the same
module with the same weights in float64 on the CPU. The error is taken relative to the
reference's largest magnitude; it must stay within a tolerance per dtype, or, for the modules
with a lean attention, within twice the error of the same module with ``lean=False`` (the
explicit formula) on the same device and dtype, whichever is larger: low precision costs the
lean paths what it costs the formula written out, no more. The CPU fast paths never run on
CUDA (checked below), so every other module runs its plain formula there.

These run where CUDA exists and skip elsewhere (CI has no GPU). TF32 is switched off for the
run: cuDNN convolutions use it by default on Ampere and later GPUs, which would measure
PyTorch's precision setting rather than the modules' arithmetic.
"""
import copy

import pytest
import torch

from mmattn.models import attention_classes
from mmattn.models.layers import cpu_kernels, use_fast_path
from tests.helpers import randomize_

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason='needs a CUDA GPU (none here; CI has none)')

SHAPE = (2, 32, 12, 10)
# largest error relative to the reference's largest magnitude, output / gradients
TOL = {
    torch.float32: (1e-4, 1e-4),
    torch.bfloat16: (3e-2, 6e-2),
    torch.float16: (5e-3, 1e-2),
}
NAMES = sorted(attention_classes())


@pytest.fixture(autouse=True)
def no_tf32():
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _reference(name):
    torch.manual_seed(0)
    cls = attention_classes()[name]
    module = randomize_(cls(in_channels=SHAPE[1])).double().eval()
    inputs = cls.example_inputs(SHAPE[1], SHAPE, dtype=torch.float64)
    return module, inputs


def _run(module, inputs, device, amp=None):
    """Output and gradients (inputs, then parameters) of a fixed projection of the output, as
    float64 on the CPU. The module runs in float64 on the CPU, float32 on CUDA (then under
    autocast to ``amp`` if given)."""
    dtype = torch.float64 if device == 'cpu' else torch.float32
    xs = [t.detach().to(device, dtype).requires_grad_() for t in inputs]
    params = [p for p in module.parameters() if p.requires_grad]
    with torch.autocast('cuda', dtype=amp or torch.float16, enabled=amp is not None):
        out = module(*xs)
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(1),
                         dtype=torch.float64).to(device, dtype)
    grads = torch.autograd.grad((out.to(dtype) * weight).sum(), xs + params,
                                allow_unused=True)
    return [out.detach().double().cpu()] + [None if g is None else g.double().cpu()
                                            for g in grads]


def _errors(got, ref):
    errs = []
    for g, r in zip(got, ref):
        if r is None or g is None:
            assert (g is None) == (r is None), 'a gradient reaches one run only'
            errs.append(0.0)
            continue
        assert torch.isfinite(g).all(), 'non-finite values'
        errs.append(((g - r).abs().max() / r.abs().max().clamp_min(1e-12)).item())
    return errs


@pytest.mark.parametrize('amp', [None, torch.bfloat16, torch.float16],
                         ids=['fp32', 'bf16', 'fp16'])
@pytest.mark.parametrize('name', NAMES)
def test_cuda_matches_float64_cpu(name, amp):
    ref_module, inputs = _reference(name)
    ref = _run(ref_module, inputs, 'cpu')
    cuda_module = copy.deepcopy(ref_module).float().cuda()
    errs = _errors(_run(cuda_module, inputs, 'cuda', amp), ref)
    tol_out, tol_grad = TOL[amp or torch.float32]
    plain_errs = None
    if hasattr(cuda_module, 'lean'):
        # what the dtype costs the formula itself: the explicit attention's errors
        explicit = copy.deepcopy(cuda_module)
        explicit.lean = False
        plain_errs = _errors(_run(explicit, inputs, 'cuda', amp), ref)
        tol_out = max(tol_out, 2 * plain_errs[0])
        tol_grad = max(tol_grad, 2 * max(plain_errs))
    assert errs[0] <= tol_out, (f'{name} on CUDA ({amp or "fp32"}): output error {errs[0]:.2e} '
                                f'> {tol_out:.2e} (lean=False: {plain_errs})')
    worst = max(errs[1:], default=0.0)
    assert worst <= tol_grad, (f'{name} on CUDA ({amp or "fp32"}): gradient error {worst:.2e} '
                               f'> {tol_grad:.2e} (per tensor: '
                               f'{", ".join(f"{e:.1e}" for e in errs[1:])})')


@pytest.mark.parametrize('name', NAMES)
def test_no_cpu_kernel_runs_on_cuda(name, monkeypatch):
    """The fast paths are the CPU's: on CUDA the switch is off and no kernel is called."""
    assert not use_fast_path(torch.zeros(1, device='cuda'))
    called = []
    for kernel in cpu_kernels.__all__:
        if callable(getattr(cpu_kernels, kernel)) and kernel != 'CompiledKernel':
            monkeypatch.setattr(cpu_kernels, kernel,
                                lambda *args, _k=kernel, **kw: called.append(_k))
    module, inputs = _reference(name)
    _run(copy.deepcopy(module).float().cuda(), inputs, 'cuda')
    assert not called, f'{name} called {called} on CUDA'
