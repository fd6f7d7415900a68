"""Plain-PyTorch stand-ins for the released networks whose 3x3 convs hold the module: SimAM's
authors' ResNets, timm's SK nets and implus/PytorchInsight's SK-ResNet*.

Each class is written from the layout of its source's model code (named per class), so that
its ``state_dict()`` has the released checkpoints' key names and shapes and its forward
computes what the source network computes. Nothing here imports mmattn. ``forward`` returns
the four stage outputs, the features a detector takes.

Widths are a parameter (``base``, 64 in the released networks) so the tests run small; a
ResNeXt's width rule ``floor(planes * base_width / 64) * groups`` reads ``base`` for the 64,
as mmdet's ``base_channels``.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

STAGE_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
                152: (3, 8, 36, 3)}


def conv3x3(cin, cout, stride=1, groups=1, dilation=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation,
                     groups=groups, bias=False)


class StemResNet(nn.Module):
    """torchvision's stem (7x7 conv ``conv1``, ``bn1``, ReLU, 3x3 max-pool, stride 2, pad 1),
    four stages of ``make_block(inplanes, planes, stride, downsample)`` and a classifier
    ``fc``; the shortcut is ``downsample.0/1`` (1x1 conv with the stride, BN)."""

    def __init__(self, depth, base, make_block, expansion, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, base, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        inplanes = base
        for i, n in enumerate(STAGE_BLOCKS[depth]):
            planes = base * 2**i
            blocks = []
            for j in range(n):
                stride = 2 if i and not j else 1
                down = None
                if stride != 1 or inplanes != planes * expansion:
                    down = nn.Sequential(
                        nn.Conv2d(inplanes, planes * expansion, 1, stride=stride, bias=False),
                        nn.BatchNorm2d(planes * expansion))
                blocks.append(make_block(inplanes, planes, stride, down))
                inplanes = planes * expansion
            setattr(self, f'layer{i + 1}', nn.Sequential(*blocks))
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        outs = []
        for i in range(4):
            x = getattr(self, f'layer{i + 1}')(x)
            outs.append(x)
        return outs


def _shortcut(block, x):
    return x if block.downsample is None else block.downsample(x)


# --------------------------------------------------------------------------- SimAM
class SimAMSource(nn.Module):
    """ZjjConan/SimAM ``networks/attentions/simam_module.py``: n = h * w - 1,
    d = (x - mean)^2, y = d / (4 (sum(d) / n + lambda)) + 0.5, x * sigmoid(y)."""

    def __init__(self, e_lambda):
        super().__init__()
        self.e_lambda = e_lambda

    def forward(self, x):
        n = x.shape[2] * x.shape[3] - 1
        d = (x - x.mean(dim=[2, 3], keepdim=True)).pow(2)
        y = d / (4 * (d.sum(dim=[2, 3], keepdim=True) / n + self.e_lambda)) + 0.5
        return x * torch.sigmoid(y)


class SimAMBasic(nn.Module):
    """``networks/imagenet/resnet.py`` BasicBlock with ``conv2 = Sequential(conv2, simam)``."""
    expansion = 1

    def __init__(self, inplanes, planes, stride, downsample, e_lambda):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Sequential(conv3x3(planes, planes), SimAMSource(e_lambda))
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + _shortcut(self, x))


class SimAMBottleneck(nn.Module):
    """``networks/imagenet/resnet.py`` Bottleneck (stride on the 3x3 conv, width
    ``int(planes * base_width / 64) * groups``) with ``conv2 = Sequential(conv2, simam)``."""
    expansion = 4

    def __init__(self, inplanes, planes, stride, downsample, e_lambda, groups, base_width,
                 base):
        super().__init__()
        width = int(planes * (base_width / base)) * groups
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Sequential(conv3x3(width, width, stride, groups), SimAMSource(e_lambda))
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + _shortcut(self, x))


def simam_resnet(depth, base=64, e_lambda=0.1, groups=1, base_width=None):
    """The authors' ``resnet18``-``resnet152`` (``groups=32, base_width=4``:
    ``resnext50_32x4d``) with ``attention_type='simam'``."""
    base_width = base if base_width is None else base_width
    if depth < 50:
        return StemResNet(depth, base, lambda i, p, s, d: SimAMBasic(i, p, s, d, e_lambda), 1)
    return StemResNet(depth, base, lambda i, p, s, d: SimAMBottleneck(
        i, p, s, d, e_lambda, groups, base_width, base), 4)


# --------------------------------------------------------------------------- timm SK nets
def make_divisible(v, divisor=8, round_limit=.9):
    """timm ``layers/helpers.py``: round to the nearest multiple of ``divisor`` (at least
    ``divisor``), one step up where that loses more than 10%."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


class TimmConvNormAct(nn.Module):
    """timm ``ConvNormAct``: ``conv`` (padding ``((stride - 1) + dilation * (k - 1)) // 2``,
    no bias), ``bn`` (a BatchNorm followed by ReLU, or none)."""

    def __init__(self, cin, cout, k, stride=1, dilation=1, groups=1, act=True):
        super().__init__()
        pad = ((stride - 1) + dilation * (k - 1)) // 2
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dilation,
                              groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = act

    def forward(self, x):
        x = self.bn(self.conv(x))
        return F.relu(x) if self.act else x


class TimmSKAttn(nn.Module):
    """timm ``SelectiveKernelAttn``: sum over paths, mean over H, W, ``fc_reduce`` (1x1, no
    bias), ``bn``, ReLU, ``fc_select`` (1x1, no bias) viewed (B, paths, C, 1, 1), softmax over
    the paths."""

    def __init__(self, channels, num_paths, attn_channels):
        super().__init__()
        self.num_paths = num_paths
        self.fc_reduce = nn.Conv2d(channels, attn_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(attn_channels)
        self.fc_select = nn.Conv2d(attn_channels, channels * num_paths, 1, bias=False)

    def forward(self, x):
        x = x.sum(1).mean((2, 3), keepdim=True)
        x = F.relu(self.bn(self.fc_reduce(x)))
        x = self.fc_select(x)
        b, c, h, w = x.shape
        return torch.softmax(x.view(b, self.num_paths, c // self.num_paths, h, w), dim=1)


class TimmSelectiveKernel(nn.Module):
    """timm ``SelectiveKernel`` with its default kernels [3, 5] kept 3x3 (dilations 1, 2),
    ``groups = min(out, groups)``, attention width ``make_divisible(out * rd_ratio,
    rd_divisor)``; ``split_input`` gives path i the i-th slice of the input channels."""

    def __init__(self, cin, cout, stride, groups, rd_ratio, rd_divisor, split_input):
        super().__init__()
        self.in_channels = cin
        self.split_input = split_input
        path_in = cin // 2 if split_input else cin
        groups = min(cout, groups)
        self.paths = nn.ModuleList([
            TimmConvNormAct(path_in, cout, 3, stride=stride, dilation=d, groups=groups)
            for d in (1, 2)])
        self.attn = TimmSKAttn(cout, 2, make_divisible(cout * rd_ratio, rd_divisor))

    def forward(self, x):
        if self.split_input:
            parts = torch.split(x, self.in_channels // 2, 1)
            paths = [op(parts[i]) for i, op in enumerate(self.paths)]
        else:
            paths = [op(x) for op in self.paths]
        x = torch.stack(paths, dim=1)
        return torch.sum(x * self.attn(x), dim=1)


class TimmSKBasic(nn.Module):
    """timm ``SelectiveKernelBasic``: ``conv1`` the SK unit (stride), ``conv2`` 3x3 conv + BN
    (no activation), shortcut, ReLU."""

    def __init__(self, inplanes, planes, stride, downsample, sk_kwargs):
        super().__init__()
        self.conv1 = TimmSelectiveKernel(inplanes, planes, stride, 1, **sk_kwargs)
        self.conv2 = TimmConvNormAct(planes, planes, 3, act=False)
        self.downsample = downsample

    def forward(self, x):
        out = self.conv2(self.conv1(x))
        return F.relu(out + _shortcut(self, x))


class TimmSKBottleneck(nn.Module):
    """timm ``SelectiveKernelBottleneck``: ``conv1`` 1x1 + BN + ReLU, ``conv2`` the SK unit
    (stride, cardinality groups), ``conv3`` 1x1 + BN, shortcut, ReLU; width
    ``floor(planes * base_width / 64) * cardinality``."""

    def __init__(self, inplanes, planes, stride, downsample, sk_kwargs, cardinality,
                 base_width, base):
        super().__init__()
        width = int(math.floor(planes * (base_width / base)) * cardinality)
        self.conv1 = TimmConvNormAct(inplanes, width, 1)
        self.conv2 = TimmSelectiveKernel(width, width, stride, cardinality, **sk_kwargs)
        self.conv3 = TimmConvNormAct(width, planes * 4, 1, act=False)
        self.downsample = downsample

    def forward(self, x):
        out = self.conv3(self.conv2(self.conv1(x)))
        return F.relu(out + _shortcut(self, x))


def timm_skresnet(depth, base=64):
    """timm ``skresnet18`` / ``skresnet34``."""
    sk = dict(rd_ratio=1 / 8, rd_divisor=16, split_input=True)
    return StemResNet(depth, base, lambda i, p, s, d: TimmSKBasic(i, p, s, d, sk), 1)


def timm_skresnext50(base=64, cardinality=32, base_width=4):
    """timm ``skresnext50_32x4d``."""
    sk = dict(rd_ratio=1 / 16, rd_divisor=32, split_input=False)
    return StemResNet(50, base, lambda i, p, s, d: TimmSKBottleneck(
        i, p, s, d, sk, cardinality, base_width, base), 4)


# --------------------------------------------------------------------------- PytorchInsight
class InsightSKBottleneck(nn.Module):
    """implus/PytorchInsight ``resnet_sk.py`` Bottleneck: ``conv2`` (3x3, dense) and
    ``conv2g`` (3x3, 32 groups), each + BN + ReLU; ``avg_pool(d1) + avg_pool(d2)`` ->
    ``conv_fc1`` (C -> C // 16) -> ``bn_fc1`` -> ReLU -> ``conv_fc2`` (-> 2C) viewed (2, C),
    softmax over the two; ``d1 * a1 + d2 * a2`` -> ``conv3`` -> ``bn3``."""
    expansion = 4

    def __init__(self, inplanes, planes, stride, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2g = conv3x3(planes, planes, stride, groups=32)
        self.bn2g = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample
        self.conv_fc1 = nn.Conv2d(planes, planes // 16, 1, bias=False)
        self.bn_fc1 = nn.BatchNorm2d(planes // 16)
        self.conv_fc2 = nn.Conv2d(planes // 16, 2 * planes, 1, bias=False)
        self.D = planes

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        d1 = F.relu(self.bn2(self.conv2(out)))
        d2 = F.relu(self.bn2g(self.conv2g(out)))
        d = F.adaptive_avg_pool2d(d1, 1) + F.adaptive_avg_pool2d(d2, 1)
        d = F.relu(self.bn_fc1(self.conv_fc1(d)))
        d = self.conv_fc2(d)
        d = F.softmax(torch.unsqueeze(d, 1).view(-1, 2, self.D, 1, 1), 1)
        d = d1 * d[:, 0] + d2 * d[:, 1]
        out = self.bn3(self.conv3(d))
        return F.relu(out + _shortcut(self, x))


def insight_sk_resnet(depth, base=64):
    """implus/PytorchInsight ``sk_resnet50`` / ``sk_resnet101`` / ``sk_resnet152``."""
    return StemResNet(depth, base, InsightSKBottleneck, 4)
