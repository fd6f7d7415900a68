"""What every registered attention module launches in a training step on a CUDA GPU, checked
on the CPU against its plain twin (``tools/benchmarks/kernel_trace.py``).

The step runs on the meta device with every path rule answering as on CUDA
(``dispatch.simulated('cuda')``). A module that launches the same kernels as plain PyTorch,
on the same layouts, differs from plain's GPU time only by what a trace cannot see (host
overhead, kernel choice inside an op) and noise (issue #13: "every module at most 1.0x
plain"); one that differs must do no more work by any count (kernels, bytes, FLOPs) and name
the difference below, so that a fast path meant for the CPU cannot leak onto the GPU
unnoticed. Generated from the registry: a new module is traced too, and one without a plain
twin fails. Under bfloat16 autocast the step is traced on CPU tensors (the meta device has no
autocast), with the CPU's autocast policy standing in for CUDA's.
"""
import pytest
import torch

from mmattn.models import attention_classes
from mmattn.models.dispatch import forced, simulated
from tests.helpers import load_tool

kernel_trace = load_tool('benchmarks', 'kernel_trace.py')

# modules that launch other kernels than their plain twin, doing no more work by any count
DIFFERENT_BUT_NO_MORE = {
    'CrissCross': 'its -inf self mask built once per size and added, where plain builds an inf '
                  'diagonal every pass and subtracts it',
    'CoordAttention': 'mean over one axis where plain runs adaptive pooling to (H, 1) and '
                      '(1, W): the same values, 7% less traffic',
    'NonLocal': "the authors' multiplication by (C/2)^-0.5 where mmcv divides by its root",
    'SRM': 'one var_mean pass where plain reads the map twice (mean, then var)',
    'TripletAttention': 'its rotations stay views where plain copies them (4 clones fewer)',
}


# under bfloat16 autocast (traced on the CPU, whose autocast policy stands in for CUDA's),
# modules whose step differs from plain's on purpose, doing more of some count
AMP_BY_DESIGN = {
    'NonLocal': 'fused attention (SDPA) where plain writes the formula out',
    'DANetPAM': 'fused attention (SDPA, heads of 128 sharing q and k) where plain writes it out',
    'GSoP': 'its covariance in float32 (sums over every position), where plain casts the map '
            'to bfloat16 for the product',
    'ChannelIAU': 'its energies X X^T in float32 (sums over every position: float16 overflows)',
    'DANetCAM': 'its energies X X^T in float32 (sums over every position: float16 overflows)',
}
# and those that differ there only, doing no more work by any count
AMP_NO_MORE = {
    'SpatialIAU': 'its part pooling and relation convs in float32, with fewer casts than plain',
}


@pytest.mark.parametrize('name', sorted(attention_classes()))
def test_cuda_step_launches_plains_kernels(name):
    r = kernel_trace.compare(kernel_trace.trace_module(name, 'mmattn'),
                             kernel_trace.trace_module(name, 'plain'))
    (ko, kp), (bo, bp), (fo, fp) = r['kernels'], r['bytes'], r['flops']
    what = (f'{name} on CUDA: {ko} kernels, {bo / 1e6:.1f} MB, {fo / 1e9:.3f} GFLOP against '
            f"plain's {kp}, {bp / 1e6:.1f} MB, {fp / 1e9:.3f} GFLOP; only in ours: "
            f'{dict(r["only_ours"])}; only in plain: {dict(r["only_plain"])}')
    if name in DIFFERENT_BUT_NO_MORE:
        assert not r['same'], f'{name} now runs plain\'s kernels: drop it from the list'
        assert ko <= kp and bo <= bp and fo <= fp * (1 + 1e-9), what
    else:
        assert r['same'], what


@pytest.mark.parametrize('head', sorted(kernel_trace.HEADS))
def test_cuda_head_steps_against_mmseg(head):
    """mmseg's Cityscapes heads at DANet's training crop: ours do no more work than mmseg's,
    except DANet's in float32, which runs PAM by blocks there so as not to hold its 8192 x 8192
    matrices (at most 80% of mmseg's step memory, issue #13): its largest tensor is the
    backbone's feature map, not an attention matrix."""
    r = kernel_trace.compare(kernel_trace.trace_head(head, 'mmattn'),
                             kernel_trace.trace_head(head, 'mmseg'))
    (ko, km), (bo, bm), (fo, fm), (lo, lm) = (r['kernels'], r['bytes'], r['flops'],
                                              r['largest'])
    if head == 'DAHead':
        matrices = 2 * 8192 * 8192 * 4
        features = 2 * 2048 * 64 * 128 * 4
        assert lm >= matrices and lo <= features, (lo, lm)
    else:
        assert ko <= km and bo <= bm and fo <= fm * (1 + 1e-9), (r['kernels'], r['bytes'],
                                                                 r['flops'])


@pytest.mark.parametrize('name', sorted(attention_classes()))
def test_cuda_step_under_autocast(name):
    amp = dict(shape=kernel_trace.AMP_SHAPE, amp='bf16')
    r = kernel_trace.compare(kernel_trace.trace_module(name, 'mmattn', **amp),
                             kernel_trace.trace_module(name, 'plain', **amp))
    (ko, kp), (bo, bp), (fo, fp) = r['kernels'], r['bytes'], r['flops']
    what = (f'{name} under bf16 autocast: {ko} kernels, {bo} bytes against plain\'s {kp}, '
            f'{bp}; only in ours: {dict(r["only_ours"])}; only in plain: '
            f'{dict(r["only_plain"])}')
    if name in AMP_BY_DESIGN:
        assert not r['same'], what
    elif name in DIFFERENT_BUT_NO_MORE or name in AMP_NO_MORE:
        assert not r['same'] and ko <= kp and bo <= bp and fo <= fp * (1 + 1e-9), what
    else:
        assert r['same'], what


def test_a_cpu_path_on_cuda_is_caught():
    """Forcing SE's CPU-fused gate onto the simulated GPU shows in the trace: the check can
    fail."""
    plain = kernel_trace.trace_module('SE', 'plain')
    with forced('channel_gate', 'fused'):
        fused = kernel_trace.trace_module('SE', 'mmattn')
    assert not kernel_trace.compare(fused, plain)['same']


def test_rules_answer_for_the_simulated_device():
    x = torch.empty(8, 256, 56, 56, device='meta')
    from mmattn.models.dispatch import select
    with simulated('cpu'):
        assert select('channel_gate', x) == 'fused'
    with simulated('cuda'):
        assert select('channel_gate', x) == 'plain'
        with forced('channel_gate', 'fused'):
            assert select('channel_gate', x) == 'fused'


def test_layouts_compare_by_work_not_by_shape():
    """One contiguous buffer reads alike whatever its view; a transposed or broadcast operand
    does not."""
    a = torch.empty(8, 16, 1, 1, device='meta')
    assert kernel_trace._layout(a) == kernel_trace._layout(a.view(8, 16)) == [(128, 1)]
    t = torch.empty(8, 3136, 256, device='meta').transpose(1, 2)
    assert kernel_trace._layout(t) == [(8, 802816), (256, 1), (3136, 256)]
    g = torch.empty(8, 256, 1, 1, device='meta').expand(8, 256, 56, 56)
    assert kernel_trace._layout(g) == [(2048, 1), (3136, 0)]


def test_table(capsys):
    kernel_trace.main(['--modules', 'SE', 'SRM'])
    out = capsys.readouterr().out
    assert '| SE | 15 / 15 |' in out and 'same kernels' in out


def test_products_of_other_shapes_are_other_kernels():
    """Merged layouts read two contiguous operands by their sizes alone: (8, 64, 128) @
    (8, 128, 64) and (8, 128, 64) @ (8, 64, 128) have the same operand layouts, but twice the
    FLOPs and another result; the trace must not call them the same kernel."""
    def trace(a, b):
        recorder = kernel_trace._recorder()
        with recorder:
            torch.bmm(torch.empty(*a, device='meta'), torch.empty(*b, device='meta'))
        return recorder.kernels

    small = trace((8, 64, 128), (8, 128, 64))
    large = trace((8, 128, 64), (8, 64, 128))
    assert not kernel_trace.compare(small, large)['same']
    assert kernel_trace.compare(small, trace((8, 64, 128), (8, 128, 64)))['same']
