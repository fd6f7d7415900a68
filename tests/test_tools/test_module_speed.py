"""tools/benchmarks/module_speed.py and its plain reference modules (plain_modules.py).

- the benchmark runs end to end on a tiny shape and reports checked, timed, measured rows;
- every light gate gives the plain version's output and gradients (input and every parameter),
  in float64 and in float32 on a map large enough for the fused backward to work in blocks;
- every registered module has a plain version (or is listed as having none), and each plain
  version computes our module's output and input gradient.
"""
import json

import pytest
import torch

from mmattn.models.factory import attention_classes, build_attention
from tests.helpers import assert_close, load_tool



plain_modules = load_tool('benchmarks', 'plain_modules.py')
module_speed = load_tool('benchmarks', 'module_speed.py')


def _run_pair(name, shape, dtype, seed=0):
    """(ours, plain) outputs, input gradients and parameter gradients on the same inputs."""
    ours = module_speed.randomize(build_attention(name, shape[1]).to(dtype), seed=seed).train()
    plain = plain_modules.build_plain(name, ours)
    inputs = module_speed.example_inputs(name, shape, dtype=dtype, seed=seed + 1)
    results = []
    for model in (ours, plain):
        xs = [t.clone().requires_grad_() for t in inputs]
        torch.manual_seed(seed + 2)  # the same dropout masks
        out = model(*xs)
        gy = torch.randn(out.shape, dtype=dtype,
                         generator=torch.Generator().manual_seed(seed + 3))
        out.backward(gy)
        grads = {k: p.grad for k, p in model.named_parameters()}
        results.append((out.detach(), [x.grad for x in xs], grads))
    return results


# -- (b) the light gates: same output and gradients as the plain versions ----------------------
@pytest.mark.parametrize('name', module_speed.LIGHT_GATES)
@pytest.mark.parametrize('dtype, shape, tol', [
    (torch.float64, (2, 64, 9, 7), dict(rtol=1e-10, atol=1e-12)),
    # 1.3 M elements: more than one block of the fused channel-gate backward
    (torch.float32, (4, 64, 64, 80), dict(rtol=1e-4, atol=1e-5)),
])
def test_light_gate_matches_plain(name, dtype, shape, tol):
    (out, gin, gpar), (p_out, p_gin, p_gpar) = _run_pair(name, shape, dtype)
    assert_close(out, p_out, msg=f'{name}: output', **tol)
    for a, b in zip(gin, p_gin):
        assert_close(a, b, msg=f'{name}: input gradient', **tol)
    assert gpar.keys() == p_gpar.keys(), f'{name}: parameters differ'
    for k in gpar:
        scale = p_gpar[k].abs().max().item()
        assert scale > 0, f'{name}: the gradient of {k} is 0, the check would prove nothing'
        assert_close(gpar[k], p_gpar[k], msg=f'{name}: gradient of {k}',
                     rtol=tol['rtol'], atol=tol['atol'] + tol['rtol'] * scale)


# -- (c) every registered module has a plain version, and it agrees with ours -----------------
def test_every_module_has_a_plain_version_or_is_listed():
    registered = set(attention_classes())
    builders = set(plain_modules.PLAIN_BUILDERS)
    listed = set(plain_modules.NO_PLAIN)
    assert not builders & listed, f'both built and listed as missing: {builders & listed}'
    assert (builders | listed) - registered == set(), 'plain versions of unregistered modules'
    missing = registered - builders - listed
    assert not missing, (f'registered modules without a plain version in '
                         f'tools/benchmarks/plain_modules.py: {sorted(missing)}; write one or '
                         f'list it in NO_PLAIN with the reason')
    assert set(module_speed.LIGHT_GATES) <= builders


@pytest.mark.parametrize('name', sorted(plain_modules.PLAIN_BUILDERS))
def test_plain_version_matches_ours(name):
    (out, gin, _), (p_out, p_gin, _) = _run_pair(name, (2, 32, 9, 7), torch.float64)
    # the attention path must show in the output: not the identity of a zero-init gamma
    inputs = module_speed.example_inputs(name, (2, 32, 9, 7), dtype=torch.float64, seed=1)
    if out.shape == inputs[-1].shape:
        assert (out - inputs[-1]).abs().max() > 1e-3, f'{name}: output equals the input'
    assert_close(out, p_out, rtol=1e-9, atol=1e-12, msg=f'{name}: output')
    for a, b in zip(gin, p_gin):
        assert_close(a, b, rtol=1e-9, atol=1e-12, msg=f'{name}: input gradient')


def test_plain_refuses_an_unsupported_configuration():
    ours = build_attention('GatherExcite', 8, variant='theta')
    with pytest.raises(NotImplementedError, match='GatherExcite'):
        plain_modules.build_plain('GatherExcite', ours)


def test_timm_unavailable_is_reported(tmp_path):
    ours = build_attention('SE', 8)
    with pytest.raises(ImportError, match='timm.layers.squeeze_excite'):
        module_speed.build_timm('SE', ours, timm_path=str(tmp_path))


# -- (a) end to end on a tiny shape ----------------------------------------------------------
def test_benchmark_end_to_end(tmp_path, capsys):
    out_json = tmp_path / 'speed.json'
    rc = module_speed.main([
        '--modules', 'SE', 'ObjectContext', '--shape', '2', '16', '8', '8', '--repeat', '3',
        '--budget', '0.2', '--threads', '1', '--timm-path', str(tmp_path), '--json',
        str(out_json)
    ])
    assert rc == 0
    table = capsys.readouterr().out
    data = json.loads(out_json.read_text())
    rows = {(r['module'], r['impl']): r for r in data['results']}
    # SE has a timm counterpart, not importable from the empty --timm-path
    assert set(rows) == {('SE', 'mmattn'), ('SE', 'plain'), ('SE', 'timm'),
                         ('ObjectContext', 'mmattn'), ('ObjectContext', 'plain')}
    assert 'cannot be imported' in rows['SE', 'timm']['unavailable']
    for key in [('SE', 'mmattn'), ('SE', 'plain'), ('ObjectContext', 'mmattn'),
                ('ObjectContext', 'plain')]:
        r = rows[key]
        for what in ('fwd', 'fwd_bwd', 'pass'):
            assert 0 < r[what]['min_ms'] <= r[what]['median_ms'], (key, what)
            assert r[what]['n'] >= 3
        assert r['peak_mib'] >= 0
        assert r['fwd_bwd']['min_ms'] > r['fwd']['min_ms'] * 0.5
    for module in ('SE', 'ObjectContext'):
        plain = rows[module, 'plain']
        assert plain['diff_out'] < 1e-5 and plain['diff_grad'] < 1e-5, plain
    assert '| SE | plain |' in table and '| ObjectContext | mmattn |' in table
    assert 'Light gates in passes' in table
