"""Every CPU fast path against the same module with the switch off.

``FAST_PATHS`` lists the modules that have a fast path and the kernels of
:mod:`mmattn.models.layers.cpu_kernels` each one calls. The tests are generated from it: each
module, in float64 with random weights, must give the same output and the same gradients
(input and every parameter) with the switch on as with it off, and must have called its
kernels with the switch on only. A first test runs every registered module (and each of its
variants) with the switch on and checks that the modules reaching a kernel are exactly those
listed, so that a new fast path cannot go untested.
"""
import pytest
import torch

from mmattn.models import attention_classes
from mmattn.models.layers import cpu_kernels, fast_paths
from tests.helpers import assert_close, randomize_

SHAPE = (2, 16, 9, 11)

# case -> (registry name, keyword arguments, kernels it calls)
FAST_PATHS = {
    'SimAM': ('SimAM', {}, {'simam'}),
    'CrissCross': ('CrissCross', {}, {'criss_cross'}),
    'CrissCross-r1': ('CrissCross', dict(recurrence=1), {'criss_cross'}),
    'DANetCAM': ('DANetCAM', {}, {'gram', 'flushed_softmax'}),
    'SpatialIAU': ('SpatialIAU', {}, {'part_pool'}),
    'RGA': ('RGA', {}, {'regrouped_relations'}),
    'RGA-spatial_only': ('RGA', dict(use_channel=False), {'regrouped_relations'}),
    'RGA-channel_only': ('RGA', dict(use_spatial=False), {'regrouped_relations'}),
}
KERNELS = ('simam', 'criss_cross', 'gram', 'flushed_softmax', 'part_pool',
           'regrouped_relations')


def test_kernels_listed():
    assert set(KERNELS) == set(cpu_kernels.__all__) - {'CompiledKernel', 'SIMAM_MIN_ELEMENTS'}


@pytest.fixture
def calls(monkeypatch):
    """Counts the calls of every kernel; SimAM's kernel reached with small inputs."""
    counted = {}

    def counting(name, fn):
        def call(*args, **kwargs):
            counted[name] = counted.get(name, 0) + 1
            return fn(*args, **kwargs)
        return call

    for name in KERNELS:
        monkeypatch.setattr(cpu_kernels, name, counting(name, getattr(cpu_kernels, name)))
    monkeypatch.setattr(cpu_kernels, 'SIMAM_MIN_ELEMENTS', 0)
    yield counted
    for kernel in (cpu_kernels.simam_forward_kernel, cpu_kernels.simam_backward_kernel):
        assert kernel.failed is None, 'torch.compile failed: SimAM ran its eager kernels'


def _cases():
    """(case, registry name, kwargs): every module with its defaults and its variants."""
    for name, cls in attention_classes().items():
        yield name, name, {}
        for vname, kwargs in getattr(cls, 'variants', {}).items():
            yield f'{name}-{vname}', name, kwargs


def _build(name, kwargs):
    torch.manual_seed(0)
    cls = attention_classes()[name]
    # eval: dropout off and batch norms fixed functions, so two runs compute the same thing
    module = randomize_(cls(in_channels=SHAPE[1], **kwargs)).double().eval()
    inputs = cls.example_inputs(SHAPE[1], SHAPE, dtype=torch.float64)
    return module, inputs


def _run(module, inputs):
    """Output and the gradients of a fixed random projection of it w.r.t. the inputs and
    every parameter (None where one gets none)."""
    inputs = [t.detach().clone().requires_grad_() for t in inputs]
    params = [p for p in module.parameters() if p.requires_grad]
    out = module(*inputs)
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(1),
                         dtype=out.dtype)
    grads = torch.autograd.grad((out * weight).sum(), inputs + params, allow_unused=True)
    return out.detach(), grads


def test_every_fast_path_is_listed(calls):
    reached = {}
    for case, name, kwargs in _cases():
        calls.clear()
        module, inputs = _build(name, kwargs)
        with fast_paths(True):
            _run(module, inputs)
        if calls:
            reached[case] = (name, kwargs, set(calls))
    assert reached == FAST_PATHS, 'FAST_PATHS does not list exactly the modules reaching a kernel'


@pytest.mark.parametrize('case', sorted(FAST_PATHS))
def test_fast_path_equals_the_switch_off(case, calls):
    name, kwargs, kernels = FAST_PATHS[case]
    module, inputs = _build(name, kwargs)
    with fast_paths(False):
        ref_out, ref_grads = _run(module, inputs)
    assert not calls, f'{case}: kernels ran with the switch off: {calls}'
    with fast_paths(True):
        out, grads = _run(module, inputs)
    assert set(calls) == kernels
    msg = f'{case}: fast path against the switch off'
    torch.testing.assert_close(out, ref_out, rtol=1e-9, atol=1e-11,
                               msg=lambda m: f'{msg}, output: {m}')
    assert len(grads) == len(ref_grads)
    for i, (g, r) in enumerate(zip(grads, ref_grads)):
        assert (g is None) == (r is None), f'{msg}: gradient {i} reaches one only'
        if g is not None:
            torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-11,
                                       msg=lambda m: f'{msg}, gradient {i}: {m}')


@pytest.mark.parametrize('case', sorted(FAST_PATHS))
def test_traces_hold_the_plain_formula(case, calls):
    """A traced module (FLOP counts, TorchScript) records the plain operators, no Python
    autograd Function."""
    name, kwargs, _ = FAST_PATHS[case]
    module, inputs = _build(name, kwargs)
    with fast_paths(True), torch.no_grad():
        graph = torch.jit.trace(module, tuple(inputs), check_trace=False).inlined_graph
    assert not calls
    assert 'prim::PythonOp' not in {n.kind() for n in graph.nodes()}


# -- gram ---------------------------------------------------------------------------------------
@pytest.mark.parametrize('layout', ['contiguous', 'transposed'])
def test_gram_gradients_are_those_of_the_plain_product(layout):
    f = torch.randn(2, 5, 7, dtype=torch.float64)
    if layout == 'transposed':  # e.g. a channels-last map flattened
        f = f.transpose(1, 2).contiguous().transpose(1, 2)
    gy = torch.randn(2, 5, 5, dtype=torch.float64)
    f1, f2 = f.clone().requires_grad_(), f.clone().requires_grad_()
    g = cpu_kernels.gram(f1)
    assert type(g.grad_fn).__name__.startswith('_Gram')
    g.backward(gy)
    torch.bmm(f2, f2.transpose(1, 2)).backward(gy)
    assert_close(g, torch.bmm(f, f.transpose(1, 2)))
    assert_close(f1.grad, f2.grad)
    x = torch.randn(2, 4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(cpu_kernels.gram, (x, ))
    assert torch.autograd.gradgradcheck(cpu_kernels.gram, (x, ))


# -- flushed_softmax ------------------------------------------------------------------------------
def test_flushed_softmax_sets_subnormals_to_zero():
    tiny = torch.finfo(torch.float32).tiny
    # row 0: one probability of exp(-90) (subnormal in float32), row 1: none
    e = torch.tensor([[0., -90., -200.], [0., 1., 2.]], requires_grad=True)
    p = cpu_kernels.flushed_softmax(e)
    plain = e.detach().softmax(-1)
    assert 0 < plain[0, 1] < tiny and p[0, 1] == 0
    assert torch.equal(p[1], plain[1])
    (g,) = torch.autograd.grad(p, e, torch.tensor([[1., 1e-3, 0.], [0., 1., 0.]]))
    assert not ((g != 0) & (g.abs() < tiny)).any()
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(cpu_kernels.flushed_softmax, (x, ))


# -- part_pool and regrouped_relations ------------------------------------------------------------
def test_part_pool_is_part_sums_and_mean():
    x = torch.randn(2, 5, 12, dtype=torch.float64, requires_grad=True)
    a = torch.rand(2, 3, 12, dtype=torch.float64, requires_grad=True)
    expected = torch.cat([torch.einsum('ncm,npm->ncp', x, a), x.mean(2, keepdim=True)], 2)
    assert_close(cpu_kernels.part_pool(x, a), expected)
    assert torch.autograd.gradcheck(cpu_kernels.part_pool, (x, a))


def test_regrouped_relations_equal_the_conv_on_the_relation_vectors():
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(2, 4, 15, generator=gen, dtype=torch.float64) for _ in range(2))
    a_grid, b_grid = (torch.randn(2, 4, 6, generator=gen, dtype=torch.float64)
                      for _ in range(2))
    weight = torch.randn(3, 12, generator=gen, dtype=torch.float64)
    rel_in = torch.bmm(a.transpose(1, 2), b_grid)  # (N, nodes, P): a_i . b_grid_k
    rel_out = torch.bmm(a_grid.transpose(1, 2), b)  # (N, P, nodes): a_grid_k . b_i
    vectors = torch.cat([rel_in.transpose(1, 2), rel_out], dim=1)  # (N, 2P, nodes)
    expected = torch.einsum('op,npi->noi', weight, vectors)
    assert_close(cpu_kernels.regrouped_relations(weight, a, b, a_grid, b_grid), expected)

