"""The path rules of mmattn.models.dispatch, tested on the CPU.

Every registered rule is covered, generated from ``dispatch.rules()``: the registered
attention modules are run once to find which of them consult each rule (a rule no module
reaches fails here, so a new rule cannot skip its test), then every choice of the rule is
forced in turn and the module's output and gradients (input and parameters, float64) are
compared with those of the rule's first, plain, choice.

Rules are asked about devices this machine lacks through stand-in tensors
(:class:`mmattn.models.path_report.TensorProbe`) and ``meta`` tensors.
"""
import dataclasses
import os
import subprocess
import sys

import pytest
import torch

from mmattn.models import attention_classes, dispatch
from mmattn.models.path_report import TensorProbe, example_of, render
from tests.helpers import randomize_

SHAPE = (2, 16, 9, 11)

# What each rule registered for a fast path outside the lean attention picks, as
# (cpu float32, cpu bfloat16, cuda float32, cuda bfloat16) at (8, 256, 56, 56): the fused
# path on the CPU, where it was measured faster (README), the plain ops on a CUDA GPU
# (issue #13, an NVIDIA H200).
EXPECTED = {
    'channel_gate': ('fused', 'fused', 'plain', 'plain'),
    'criss_cross': ('fused', 'fused', 'plain', 'plain'),
    'fcanet_dct_pool': ('folded', 'folded', 'plain', 'plain'),
    'flushed_softmax': ('flushed', 'flushed', 'plain', 'plain'),
    'gc_mask': ('product', 'product', 'plain', 'plain'),
    'global_avg_pool': ('fused', 'fused', 'plain', 'plain'),
    'gram': ('fused', 'fused', 'plain', 'plain'),
    'pool_matrix': ('matrix', 'matrix', 'plain', 'plain'),
    'rga_relations': ('regrouped', 'regrouped', 'plain', 'plain'),
    'siau_pool': ('product', 'product', 'plain', 'plain'),
    'simam': ('fused', 'fused', 'plain', 'plain'),
}


def _variants():
    """(case name, registry name, keyword arguments): every module with its defaults and with
    each of its ``variants`` (as the conformance suite takes them), so that a path only a
    variant reaches (Non-local's concatenation form) is covered too."""
    for name, cls in attention_classes().items():
        yield name, name, {}
        for vname, kwargs in getattr(cls, 'variants', {}).items():
            yield f'{name}-{vname}', name, kwargs


CASES = {case: (name, kwargs) for case, name, kwargs in _variants()}


def _build(case):
    name, kwargs = CASES[case]
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


def _consulted():
    """{rule name: [module names whose forward + backward asks it]}, found by wrapping every
    rule's ``choose`` (select calls it wherever nothing is forced)."""
    seen = {}
    saved = dict(dispatch._RULES)

    def recording(rule):
        def choose(x, **info):
            seen.setdefault(rule.name, set()).add(current[0])
            return rule.choose(x, **info)
        return dataclasses.replace(rule, choose=choose)

    current = [None]
    try:
        for name, rule in saved.items():
            dispatch._RULES[name] = recording(rule)
        for case in CASES:
            current[0] = case
            module, inputs = _build(case)
            _run(module, inputs)
    finally:
        dispatch._RULES.clear()
        dispatch._RULES.update(saved)
    return {name: sorted(mods) for name, mods in seen.items()}


@pytest.fixture(scope='module')
def consulted():
    return _consulted()


@pytest.fixture
def no_env_forcing(monkeypatch):
    """Rules as registered, whatever MMATTN_PATHS the test process was started with."""
    monkeypatch.setattr(dispatch, '_FORCED', {})


RULES = sorted(dispatch.rules())


def test_rules_registered():
    """Every fast path outside the lean attention has its rule, plain first."""
    rules = dispatch.rules()
    assert set(EXPECTED) <= set(rules), sorted(set(EXPECTED) - set(rules))
    for name in EXPECTED:
        assert rules[name].choices[0] == 'plain', rules[name]
        assert len(rules[name].choices) >= 2 and rules[name].reason, rules[name]


@pytest.mark.parametrize('name', RULES)
def test_every_choice_matches_plain(name, consulted, no_env_forcing):
    """Each choice of the rule, forced, gives the plain choice's output and gradients in
    float64, in every registered module that consults the rule."""
    modules = consulted.get(name)
    assert modules, (f'no registered attention module consults the path rule {name!r} on a '
                     f'{SHAPE} float64 input with gradients: add a case for it here')
    rule = dispatch.rules()[name]
    plain = rule.choices[0]
    for mod_name in modules:
        module, inputs = _build(mod_name)
        with dispatch.forced(name, plain):
            ref_out, ref_grads = _run(module, inputs)
        for choice in rule.choices[1:]:
            with dispatch.forced(name, choice):
                out, grads = _run(module, inputs)
            msg = f'{mod_name}, path {name!r}: {choice!r} against {plain!r}'
            torch.testing.assert_close(out, ref_out, rtol=1e-9, atol=1e-11,
                                       msg=lambda m: f'{msg}, output: {m}')
            assert len(grads) == len(ref_grads)
            for i, (g, r) in enumerate(zip(grads, ref_grads)):
                assert (g is None) == (r is None), f'{msg}: gradient {i} reaches one only'
                if g is not None:
                    torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-11,
                                               msg=lambda m: f'{msg}, gradient {i}: {m}')


def test_forcing_changes_the_path(no_env_forcing):
    """Forcing reaches the path: the fused gate's autograd Function appears in the graph only
    when its choice is forced (on the CPU it is also the rule's own pick)."""
    from mmattn.models.ops import channel_gate
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    g = torch.rand(2, 3, 1, 1, dtype=torch.float64, requires_grad=True)
    assert 'ChannelGate' in type(channel_gate(x, g).grad_fn).__name__
    with dispatch.forced('channel_gate', 'plain'):
        assert type(channel_gate(x, g).grad_fn).__name__ == 'MulBackward0'
    with dispatch.forced('*', 'plain'):
        assert type(channel_gate(x, g).grad_fn).__name__ == 'MulBackward0'
    assert 'ChannelGate' in type(channel_gate(x, g).grad_fn).__name__


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_picks_by_device_and_dtype(name, no_env_forcing):
    picks = tuple(dispatch.select(name, TensorProbe(d, t, (8, 256, 56, 56)))
                  for d in ('cpu', 'cuda') for t in (torch.float32, torch.bfloat16))
    assert picks == EXPECTED[name]
    # devices nothing was measured on get the default, plain: a real meta tensor, and others
    meta = torch.empty(8, 256, 56, 56, device='meta')
    assert dispatch.select(name, meta) == 'plain'
    for device in ('cuda:1', 'mps', 'xpu'):
        assert dispatch.select(name, TensorProbe(device)) == 'plain'


@pytest.mark.parametrize('name', RULES)
def test_every_rule_answers_for_any_device(name, no_env_forcing):
    """choose reads only what a stand-in tensor has, and answers one of its choices."""
    rule = dispatch.rules()[name]
    shape, info = example_of(name)
    for device in ('cpu', 'cuda', 'meta'):
        for dtype in (torch.float32, torch.bfloat16, torch.float16, torch.float64):
            assert dispatch.select(name, TensorProbe(device, dtype, shape), **info) \
                in rule.choices


def test_simam_size_threshold(no_env_forcing):
    from mmattn.models.spatial import simam
    small = TensorProbe('cpu', torch.float32, (1, 4, 8, 8))
    assert dispatch.select('simam', small) == 'plain'
    big = TensorProbe('cpu', torch.float32, (1, 4, 128, 128))
    assert big.numel() >= simam.FUSED_MIN_ELEMENTS
    assert dispatch.select('simam', big) == 'fused'


def test_forced_errors_and_nesting(no_env_forcing):
    with pytest.raises(ValueError, match=r"path 'channel_gate' has no choice 'bogus'; "
                                         r'choices: plain, fused'):
        with dispatch.forced('channel_gate', 'bogus'):
            pass
    with pytest.raises(KeyError, match='no path rule named .no_such_path.'):
        with dispatch.forced('no_such_path', 'plain'):
            pass
    with pytest.raises(KeyError, match='no path rule named .no_such_path.'):
        dispatch.select('no_such_path', torch.zeros(1))
    probe = TensorProbe('cpu')
    with dispatch.forced('gram', 'plain'):
        assert dispatch.select('gram', probe) == 'plain'
        with dispatch.forced('gram', 'fused'):
            assert dispatch.select('gram', probe) == 'fused'
        assert dispatch.select('gram', probe) == 'plain'
    assert dispatch.select('gram', probe) == 'fused'
    assert dispatch._FORCED == {}


def test_forced_star_touches_only_rules_with_the_choice(no_env_forcing):
    cpu, cuda = TensorProbe('cpu'), TensorProbe('cuda')
    with dispatch.forced('*', 'fused'):
        assert dispatch.select('gram', cuda) == 'fused'
        # no 'fused' choice: the rule decides
        assert dispatch.select('fcanet_dct_pool', cuda) == 'plain'
        assert dispatch.select('fcanet_dct_pool', cpu) == 'folded'
    with dispatch.forced('*', 'plain'):
        for name in EXPECTED:
            assert dispatch.select(name, cpu) == 'plain'


def test_mmattn_paths_env(monkeypatch):
    parse = dispatch._parse_env
    assert parse('') == {}
    assert parse('plain') == {'*': 'plain'}
    assert parse(' channel_gate=fused , gram=plain,') == {'channel_gate': 'fused',
                                                          'gram': 'plain'}
    cpu = TensorProbe('cpu')
    monkeypatch.setattr(dispatch, '_FORCED', parse('gram=plain,channel_gate=bogus'))
    assert dispatch.select('gram', cpu) == 'plain'
    assert dispatch.select('global_avg_pool', cpu) == 'fused'
    with pytest.raises(ValueError, match=r"MMATTN_PATHS asks path 'channel_gate' for "
                                         r"'bogus'; its choices: plain, fused"):
        dispatch.select('channel_gate', cpu)


def test_mmattn_paths_env_in_a_process():
    """MMATTN_PATHS is read when mmattn is imported."""
    env = dict(os.environ, MMATTN_PATHS='plain', OMP_NUM_THREADS='1')
    code = ('import torch, mmattn; from mmattn.models import dispatch; '
            'x = torch.zeros(1, 1, 1, 1); '
            "print(dispatch.select('channel_gate', x), dispatch.select('gram', x))")
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ['plain', 'plain']


def test_paths_command(capsys, no_env_forcing):
    from mmattn.__main__ import main
    assert main(['paths']) == 0
    text = capsys.readouterr().out
    assert text == render(width=100) + '\n'
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    for name, rule in dispatch.rules().items():
        assert f'{name}  (choices: {", ".join(rule.choices)})' in text
    assert '    cpu: fp32 fused, bf16 fused | cuda: fp32 plain, bf16 plain' in text
    assert f'{len(dispatch.rules())} rules' in text
