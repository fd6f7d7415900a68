"""SKConv (the SK unit as a conv) and AttnConv2d (a conv, then an attention module) against
their formulas written out in float64 from the modules' tensors, their initial state and their
refusals."""
import pytest
import torch
import torch.nn.functional as F

from mmattn.models.backbones.conv_slot import AttnConv2d
from mmattn.models.spatial import SKConv
from tests.helpers import assert_close, randomize_
from .reference import bn_eval


def conv_per_group(x, weight, groups, stride, dilation):
    """A grouped 3x3 conv written as one ordinary conv per group (padding = dilation)."""
    cin, cout = x.shape[1] // groups, weight.shape[0] // groups
    return torch.cat([
        F.conv2d(x[:, g * cin:(g + 1) * cin], weight[g * cout:(g + 1) * cout], stride=stride,
                 padding=dilation, dilation=dilation) for g in range(groups)
    ], dim=1)


def bn_train(x, bn):
    """Batch norm with the batch's statistics (biased variance), as in training."""
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    shape = (1, -1, 1, 1)
    return (x - mean) / torch.sqrt(var + bn.eps) * bn.weight.view(shape) + bn.bias.view(shape)


def sk_reference(x, m, stride, dilations, groups, split, train=False):
    """Split (branch m: 3x3 conv with dilation dilations[m] and groups[m], BN, ReLU; with
    ``split`` on the m-th slice of the input), fuse (sum, GAP, C->d, BN, ReLU), select (d->C
    per branch, softmax across branches), weighted sum."""
    norm = bn_train if train else bn_eval
    n_br = len(dilations)
    parts = x.chunk(n_br, dim=1) if split else [x] * n_br
    branches = []
    for part, b, d, g in zip(parts, m.branches, dilations, groups):
        y = conv_per_group(part, b.conv.weight, g, stride, d)
        branches.append(torch.relu(norm(y, b.bn)))
    c = branches[0].shape[1]
    s = sum(branches).mean(dim=(2, 3))                                        # (N, C)
    z = s @ m.fc_reduce.conv.weight[:, :, 0, 0].t()                           # (N, d)
    z = torch.relu(norm(z[:, :, None, None], m.fc_reduce.bn))[:, :, 0, 0]
    w_sel = m.fc_select.weight[:, :, 0, 0]
    logits = torch.stack([z @ w_sel[i * c:(i + 1) * c].t() for i in range(n_br)])
    a = torch.exp(logits) / torch.exp(logits).sum(dim=0)                       # across branches
    return sum(a[i][:, :, None, None] * branches[i] for i in range(n_br))


CASES = {
    # SKNet-50's unit in a ResNeXt block, strided
    'sknet': (dict(in_channels=64, out_channels=64, stride=2, groups=8), (1, 2), (8, 8),
              False),
    # timm's skresnet18: the input split between the paths, widths change
    'timm-basic': (dict(in_channels=32, out_channels=48, stride=2, split_input=True,
                        reduction=8, min_channels=16), (1, 2), (1, 1), True),
    # implus/PytorchInsight's SK-ResNet*: a dense and a grouped branch, no dilation
    'pytorchinsight': (dict(in_channels=64, branch_dilations=(1, 1), branch_groups=(1, 32),
                            min_channels=1), (1, 1), (1, 32), False),
    # three branches, a dilated unit (mmseg's dilated stages)
    'M3-dilated': (dict(in_channels=24, num_branches=3, dilation=2, groups=3), (2, 4, 6),
                   (3, 3, 3), False),
}


@pytest.mark.parametrize('train', [False, True], ids=['eval', 'train'])
@pytest.mark.parametrize('name', list(CASES))
def test_sk_conv_matches_formula(name, train):
    kwargs, dilations, groups, split = CASES[name]
    torch.manual_seed(0)
    m = randomize_(SKConv(**kwargs)).double().train(train)
    x = torch.randn(2, kwargs['in_channels'], 9, 7, dtype=torch.float64)
    expected = sk_reference(x, m, kwargs.get('stride', 1), dilations, groups, split, train)
    out = m(x)
    assert out.shape == expected.shape
    assert out.shape[1] == kwargs.get('out_channels', kwargs['in_channels'])
    assert_close(out, expected, rtol=1e-10, atol=1e-12)


def test_sk_conv_is_the_plugin_at_stride_one():
    """With the plugin's arguments (stride 1, C in and out) it computes SelectiveKernel."""
    from mmattn.models.spatial import SelectiveKernel
    plugin = randomize_(SelectiveKernel(64)).double().eval()
    conv = SKConv(64, groups=32).double().eval()
    conv.load_state_dict(plugin.state_dict())
    x = torch.randn(2, 64, 6, 5, dtype=torch.float64)
    assert torch.equal(conv(x), plugin(x))


def test_sk_conv_initial_state():
    m = SKConv(256, out_channels=512, stride=2, groups=32)
    assert m.attn_channels == 32 and m.num_branches == 2     # d = max(512 // 16, 32)
    assert SKConv(1024).attn_channels == 64
    assert SKConv(64, reduction=8, min_channels=16).attn_channels == 16
    assert SKConv(64, min_channels=1).attn_channels == 4
    for i, b in enumerate(m.branches):
        assert b.conv.weight.shape == (512, 8, 3, 3) and b.conv.bias is None
        assert b.conv.stride == (2, 2) and b.conv.dilation == (i + 1, i + 1)
        assert b.conv.padding == (i + 1, i + 1) and b.conv.groups == 32
        assert torch.all(b.bn.weight == 1) and torch.all(b.bn.bias == 0)
    assert m.fc_reduce.conv.weight.shape == (32, 512, 1, 1) and m.fc_reduce.conv.bias is None
    assert m.fc_select.weight.shape == (2 * 512, 32, 1, 1) and m.fc_select.bias is None
    # the prototxt's Gaussian(0.01) filler for the fuse and select convs, kept after a
    # backbone-wide Kaiming init
    big = SKConv(1024, groups=32, init_cfg=dict(type='Kaiming', layer='Conv2d'))
    big.init_weights()
    for w in (big.fc_reduce.conv.weight, big.fc_select.weight):
        assert abs(w.std().item() - 0.01) < 0.001
    assert abs(big.branches[0].conv.weight.std().item() - (2 / (1024 * 9)) ** 0.5) < 0.001
    assert SKConv.includes_norm_act and not SKConv.is_plugin
    split = SKConv(64, out_channels=32, split_input=True)
    assert [b.conv.weight.shape[1] for b in split.branches] == [32, 32]


@pytest.mark.parametrize('kwargs,words', [
    (dict(kernel_size=5), 'kernel_size must be 3'),
    (dict(padding=0), 'padding must equal dilation (1)'),
    (dict(bias=True), 'bias must be False'),
    (dict(num_branches=0), 'num_branches must be a positive int, got 0'),
    (dict(stride=True), 'stride=True is a bool, but stride is a number'),
    (dict(stride=0), 'stride must be a positive int, got 0'),
    (dict(branch_groups=(1, 2, 4)), 'branch_groups must be 2 positive ints'),
    (dict(branch_dilations=(1, 0)), 'branch_dilations must be 2 positive ints'),
    (dict(groups=5), 'groups 5 must divide the branch input width (16)'),
    (dict(split_input=True, num_branches=3), 'split_input needs in_channels (16) divisible'),
])
def test_sk_conv_refuses_bad_arguments(kwargs, words):
    with pytest.raises(ValueError) as info:
        SKConv(16, **kwargs)
    assert str(info.value).startswith('SKConv: ') and words in str(info.value)


def test_sk_conv_checks_its_input():
    with pytest.raises(ValueError, match=r'SKConv\(in_channels=16\): expected x with 16 '
                       r'channels, got 8'):
        SKConv(16)(torch.randn(1, 8, 4, 4))


@pytest.mark.parametrize('stride,padding,groups', [(1, 1, 1), (2, 1, 4), (1, 2, 2)])
def test_attn_conv2d_is_the_conv_then_the_attention(stride, padding, groups):
    torch.manual_seed(0)
    m = AttnConv2d(8, 16, 3, stride=stride, padding=padding, dilation=padding, groups=groups,
                   bias=False, attention=dict(type='mmattn.SimAM', e_lambda=0.1)).double()
    x = torch.randn(2, 8, 9, 8, dtype=torch.float64)
    y = F.conv2d(x, m.weight, None, stride, padding, padding, groups)
    n = y.shape[2] * y.shape[3] - 1
    d = (y - y.mean(dim=(2, 3), keepdim=True)) ** 2
    expected = y * torch.sigmoid(d / (4 * (d.sum(dim=(2, 3), keepdim=True) / n + 0.1)) + 0.5)
    assert_close(m(x), expected, rtol=1e-12, atol=1e-14)
    # any registered plugin: SE after the conv, its tensors under attn
    se = AttnConv2d(8, 16, 3, padding=1, attention=dict(type='mmattn.SE', reduction=4))
    assert se.attn.in_channels == 16
    assert sorted(se.state_dict()) == ['attn.fc1.bias', 'attn.fc1.weight', 'attn.fc2.bias',
                                       'attn.fc2.weight', 'bias', 'weight']
