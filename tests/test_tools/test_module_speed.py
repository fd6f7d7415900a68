"""tools/benchmarks/module_speed.py: what it compares, and the tables it prints.

- every registered module is measured as ours and as its plain formula (the fast paths
  switched off), and every reference it maps (timm, mmcv, mmseg) names a registered module;
- the plain formula computes ours' output and gradients (input and every parameter), for every
  module in float64, and for the light gates in float32 on a map large enough for their CPU
  fast paths;
- each mmcv and mmseg reference, given our weights, computes ours' output and input gradient;
  a configuration without a counterpart is refused by name;
- the benchmark runs end to end on a tiny shape and reports checked, timed, measured rows.
"""
import json

import pytest
import torch

from mmattn.models.factory import attention_classes, build_attention
from mmattn.models.layers import fast_paths
from tests.helpers import assert_close, has_module, load_tool

module_speed = load_tool('benchmarks', 'module_speed.py')

SHAPE = (2, 32, 9, 7)


def _step(model, inputs, seed, fast=True):
    """Output, input gradients and parameter gradients of one training step."""
    xs = [t.clone().requires_grad_() for t in inputs]
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # the same dropout masks
    with fast_paths(fast):
        out = model(*xs)
    gy = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(seed))
    out.backward(gy)
    grads = {k: p.grad for k, p in model.named_parameters()}
    return out.detach(), [x.grad for x in xs], grads


# -- coverage ---------------------------------------------------------------------------------
def test_every_registered_module_is_measured():
    registered = set(attention_classes())
    for name in registered:
        impls = module_speed.implementations(name, module_speed.IMPLS)
        assert impls[:2] == ['mmattn', 'plain'], (name, impls)
    for lib, builders in module_speed.REFERENCES.items():
        assert lib in module_speed.IMPLS
        assert set(builders) <= registered, (lib, set(builders) - registered)
    assert set(module_speed.LIGHT_GATES) <= registered
    assert module_speed.implementations('DANetPAM', ['mmattn', 'timm', 'mmseg']) == \
        ['mmattn', 'mmseg']


def test_options():
    args = module_speed.parse_args([])
    assert args.impls == ['mmattn', 'plain', 'timm', 'mmcv', 'mmseg']
    assert args.shape == [8, 256, 56, 56] and not args.skip_memory
    args = module_speed.parse_args(['--impls', 'mmattn', 'mmcv', '--modules', 'GlobalContext',
                                    '--shape', '2', '8', '5', '5', '--skip-memory'])
    assert args.impls == ['mmattn', 'mmcv'] and args.shape == [2, 8, 5, 5] and args.skip_memory
    with pytest.raises(SystemExit):
        module_speed.parse_args(['--impls', 'plain_modules'])
    with pytest.raises(SystemExit, match='unknown module'):
        module_speed.main(['--modules', 'NoSuchModule'])


# -- the plain formula agrees with ours -----------------------------------------------------
@pytest.mark.parametrize('name', sorted(attention_classes()))
def test_plain_formula_matches_ours(name):
    ours = module_speed.build_ours(name, SHAPE[1]).double()
    inputs = module_speed.example_inputs(name, SHAPE, dtype=torch.float64, seed=1)
    out, gin, gpar = _step(ours, inputs, seed=2)
    p_out, p_gin, p_gpar = _step(ours, inputs, seed=2, fast=False)
    # the attention path must show in the output: not the identity of a zero-init gamma
    if out.shape == inputs[-1].shape:
        assert (out - inputs[-1]).abs().max() > 1e-3, f'{name}: output equals the input'
    assert_close(p_out, out, rtol=1e-9, atol=1e-12, msg=f'{name}: output')
    for a, b in zip(p_gin, gin):
        assert_close(a, b, rtol=1e-9, atol=1e-12, msg=f'{name}: input gradient')
    assert p_gpar.keys() == gpar.keys()
    # a gradient that is zero but for rounding (SpatialIAU's reduce.bias) has no scale of its
    # own: it is compared at the scale of the module's largest parameter gradient
    scale = max((g.abs().max().item() for g in gpar.values() if g is not None), default=0.0)
    for k in gpar:
        if gpar[k] is None:
            assert p_gpar[k] is None, f'{name}: {k}'
            continue
        assert_close(p_gpar[k], gpar[k], rtol=1e-9, atol=1e-12 + 1e-9 * scale,
                     msg=f'{name}: gradient of {k}')


@pytest.mark.parametrize('name', module_speed.LIGHT_GATES)
def test_light_gate_plain_formula_matches_ours_float32(name):
    # 1.3 M elements: past the size from which the CPU fast paths of the light gates run
    shape = (4, 64, 64, 80)
    ours = module_speed.build_ours(name, shape[1])
    inputs = module_speed.example_inputs(name, shape, seed=1)
    out, gin, gpar = _step(ours, inputs, seed=2)
    p_out, p_gin, p_gpar = _step(ours, inputs, seed=2, fast=False)
    tol = dict(rtol=1e-4, atol=1e-5)
    assert_close(out, p_out, msg=f'{name}: output', **tol)
    for a, b in zip(gin, p_gin):
        assert_close(a, b, msg=f'{name}: input gradient', **tol)
    for k in gpar:
        scale = p_gpar[k].abs().max().item()
        assert scale > 0, f'{name}: the gradient of {k} is 0, the check would prove nothing'
        assert_close(gpar[k], p_gpar[k], msg=f'{name}: gradient of {k}',
                     rtol=tol['rtol'], atol=tol['atol'] + tol['rtol'] * scale)


# -- the references agree with ours ---------------------------------------------------------
REFERENCE_CASES = [(lib, name) for lib in ('mmcv', 'mmseg')
                   for name in sorted(module_speed.REFERENCES[lib])]


@pytest.mark.parametrize('lib,name', REFERENCE_CASES)
def test_reference_matches_ours(lib, name):
    if not has_module(lib):
        pytest.skip(f'needs {lib}')
    ours = module_speed.build_ours(name, SHAPE[1]).double()
    ref = module_speed.build_reference(lib, name, ours)
    assert ref.training
    inputs = module_speed.example_inputs(name, SHAPE, dtype=torch.float64, seed=1)
    out, gin, _ = _step(ours, inputs, seed=2)
    r_out, r_gin, _ = _step(ref, inputs, seed=2)
    assert (out - inputs[-1]).abs().max() > 1e-3, f'{name}: output equals the input'
    assert_close(r_out, out, rtol=1e-9, atol=1e-12, msg=f'{lib} {name}: output')
    for a, b in zip(r_gin, gin):
        assert_close(a, b, rtol=1e-9, atol=1e-12, msg=f'{lib} {name}: input gradient')


def test_reference_refuses_an_unmapped_configuration():
    ours = build_attention('NonLocal', 8, sub_sample=True)
    with pytest.raises(NotImplementedError, match='sub_sample'):
        module_speed.build_reference('mmcv', 'NonLocal', ours)
    with pytest.raises(KeyError):
        module_speed.build_reference('mmseg', 'SE', build_attention('SE', 8))


def test_timm_unavailable_is_reported(tmp_path):
    ours = build_attention('SE', 8)
    with pytest.raises(ImportError, match='timm.layers.squeeze_excite'):
        module_speed.build_timm('SE', ours, timm_path=str(tmp_path))


def test_flagged_judges_the_formulas_in_float64():
    row = dict(module='NonLocal', impl='mmcv', diff_out=2e-4, diff_grad=5e-5)
    # float32 rounding amplified by a sharp softmax: not a fault where float64 agrees
    assert not module_speed.flagged(dict(row, diff64_out=1e-14, diff64_grad=2e-14), [row])
    assert module_speed.flagged(dict(row, diff64_out=1e-6, diff64_grad=0.0), [row])
    # no float64 check ran: the float32 bound decides
    assert module_speed.flagged(row, [row])
    assert not module_speed.flagged(dict(row, diff_out=1e-6, diff_grad=1e-6), [row])


def test_fast_path_probe():
    def takes_fast_path(case, name, shape):
        with module_speed.counting_kernel_calls() as calls:
            case.step([t.requires_grad_() for t in module_speed.example_inputs(name, shape)],
                      torch.ones(shape))
        return bool(calls)

    big = (2, 16, 64, 64)  # SimAM's fast path starts at 2**16 elements
    for name, shape, takes in (('SE', big, False), ('SimAM', big, True),
                               ('SimAM', (2, 16, 8, 8), False), ('DANetCAM', big, True)):
        case = module_speed._Case(build_attention(name, 16))
        assert takes_fast_path(case, name, shape) is takes, (name, shape)
    case = module_speed._Case(build_attention('SimAM', 16), fast=False)
    assert takes_fast_path(case, 'SimAM', big) is False
    # the kernels are restored on leaving the block
    from mmattn.models.layers import cpu_kernels
    before = cpu_kernels.gram
    with module_speed.counting_kernel_calls():
        assert cpu_kernels.gram is not before
    assert cpu_kernels.gram is before


# -- end to end on a tiny shape ----------------------------------------------------------------
def test_benchmark_end_to_end(tmp_path, capsys):
    out_json = tmp_path / 'speed.json'
    rc = module_speed.main([
        '--modules', 'SE', 'DANetCAM', '--shape', '2', '16', '8', '8', '--repeat', '3',
        '--budget', '0.2', '--threads', '1', '--timm-path', str(tmp_path), '--json',
        str(out_json)
    ])
    assert rc == 0
    table = capsys.readouterr().out
    data = json.loads(out_json.read_text())
    rows = {(r['module'], r['impl']): r for r in data['results']}
    # SE has a timm counterpart, not importable from the empty --timm-path; SE takes no CPU
    # fast path, so its plain row would time the same code and is left out
    assert set(rows) == {('SE', 'mmattn'), ('SE', 'plain'), ('SE', 'timm'),
                         ('DANetCAM', 'mmattn'), ('DANetCAM', 'plain'), ('DANetCAM', 'mmseg')}
    assert 'cannot be imported' in rows['SE', 'timm']['unavailable']
    assert rows['SE', 'plain'].get('same_code') and 'fwd_bwd' not in rows['SE', 'plain']
    assert not rows['DANetCAM', 'plain'].get('same_code')
    measured = [('SE', 'mmattn'), ('DANetCAM', 'mmattn'), ('DANetCAM', 'plain'),
                ('DANetCAM', 'mmseg')]
    for key in measured:
        r = rows[key]
        for what in ('fwd', 'fwd_bwd', 'pass'):
            assert 0 < r[what]['min_ms'] <= r[what]['median_ms'], (key, what)
            assert r[what]['n'] >= 3
        assert r['peak_mib'] >= 0
        assert r['fwd_bwd']['min_ms'] > r['fwd']['min_ms'] * 0.5
    for key in measured[2:]:
        assert rows[key]['diff_out'] < 1e-5 and rows[key]['diff_grad'] < 1e-5, rows[key]
        assert rows[key]['diff64_out'] < 1e-12 and rows[key]['diff64_grad'] < 1e-12, rows[key]
    assert table.splitlines()[0].startswith('device: cpu')
    assert ('| module | impl | fwd ms (min / median) | fwd+bwd ms (min / median) | peak MiB | '
            'fwd+bwd vs mmattn | rel. diff out / grad | float64 rel. diff out / grad |') in table
    assert '| SE | plain |' not in table and '| DANetCAM | plain |' in table
    assert '| DANetCAM | mmseg |' in table
    assert 'no `plain` row (ours runs the plain formula itself): SE.' in table
    assert 'Light gates in passes' in table and '| SE | mmattn |' in table
    assert ('outputs or input gradients differing from mmattn by more than 1e-09 in float64 '
            '(or 1e-04 in float32 where float64 could not run), relative: none') in table
