"""Plain-PyTorch stand-ins for the networks whose released checkpoints the converters read.

Each class is written from the layout of the authors' model code (named per format below), so
that its ``state_dict()`` has the released checkpoints' key names and shapes and its forward
computes what the authors' network computes. Nothing here imports mmattn: the converted
backbone is compared against these networks, not against itself.

Widths are a parameter (``base``) so the tests run small; the layout is the released one.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn


# --------------------------------------------------------------------------- ResNet layout
class SourceBottleneck(nn.Module):
    """torchvision-style bottleneck (stride on the 3x3 conv), the layout every format here
    uses; ``attn`` runs after bn3, before the residual sum (every converted format)."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, attn_name=None, attn=None):
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.attn_name = attn_name
        if attn is not None:
            setattr(self, attn_name, attn)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.attn_name is not None:
            out = getattr(self, self.attn_name)(out)
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class SourceBasicBlock(nn.Module):
    """Two 3x3 convs; ``attn`` after bn2, before the residual sum (ECA, CBAM, FcaNet-34...)."""
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, attn_name=None, attn=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.attn_name = attn_name
        if attn is not None:
            setattr(self, attn_name, attn)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride,
                                                      bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.attn_name is not None:
            out = getattr(self, self.attn_name)(out)
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


STAGE_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
                152: (3, 8, 36, 3)}


class SourceResNet(nn.Module):
    """ImageNet ResNet with an attention module per block and/or between stages.

    ``block_attn(stage, channels)`` returns the module for every block of ``stage`` (or None);
    ``stage_attn(stage, channels)`` the module after that stage's output, named
    ``stage_attn_names[stage]`` (BAM's ``bam1``..``bam3``). ``forward`` returns the four stage
    outputs (after any stage module), the features a detector takes.
    """

    def __init__(self, depth=50, base=64, attn_name=None, block_attn=None, stage_attn=None,
                 stage_attn_names=('bam1', 'bam2', 'bam3', None), num_classes=10):
        super().__init__()
        block = SourceBottleneck if depth >= 50 else SourceBasicBlock
        self.conv1 = nn.Conv2d(3, base, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.stage_attn_names = []
        inplanes = base
        for i, n in enumerate(STAGE_BLOCKS[depth]):
            planes = base * 2**i
            out = planes * block.expansion
            if stage_attn is not None and stage_attn_names[i] is not None:
                module = stage_attn(i, out)
                if module is not None:
                    setattr(self, stage_attn_names[i], module)
                    self.stage_attn_names.append(stage_attn_names[i])
                else:
                    self.stage_attn_names.append(None)
            else:
                self.stage_attn_names.append(None)
            blocks = []
            for j in range(n):
                attn = block_attn(i, out) if block_attn is not None else None
                blocks.append(block(inplanes, planes, stride=2 if (i and not j) else 1,
                                    attn_name=attn_name if attn is not None else None,
                                    attn=attn))
                inplanes = out
            setattr(self, f'layer{i + 1}', nn.Sequential(*blocks))
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        outs = []
        for i in range(4):
            x = getattr(self, f'layer{i + 1}')(x)
            if self.stage_attn_names[i] is not None:
                x = getattr(self, self.stage_attn_names[i])(x)
            outs.append(x)
        return outs


class Flatten(nn.Module):

    def forward(self, x):
        return x.reshape(x.shape[0], -1)


# --------------------------------------------------------------------------- modules
class GateConv(nn.Module):
    """Jongchan/attention-module's ``BasicConv`` with ``relu=False``: conv (no bias) + BN."""

    def __init__(self, kernel_size=7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x):
        return self.bn(self.conv(x))


class ZGate(nn.Module):
    """cat[max over dim 1, mean over dim 1] -> GateConv -> sigmoid -> x * s."""

    def __init__(self, kernel_size=7):
        super().__init__()
        self.spatial = GateConv(kernel_size)

    def forward(self, x):
        pooled = torch.stack([x.max(dim=1).values, x.mean(dim=1)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class CBAMSource(nn.Module):
    """Jongchan/attention-module ``MODELS/cbam.py``: ``ChannelGate.mlp`` = (Flatten, Linear,
    ReLU, Linear) on the avg- and the max-pooled vector, summed; then ``SpatialGate``."""

    def __init__(self, c, r=16):
        super().__init__()
        self.ChannelGate = nn.Module()
        self.ChannelGate.mlp = nn.Sequential(Flatten(), nn.Linear(c, c // r), nn.ReLU(),
                                             nn.Linear(c // r, c))
        self.SpatialGate = ZGate()

    def forward(self, x):
        mlp = self.ChannelGate.mlp
        att = mlp(x.mean(dim=(2, 3))) + mlp(x.amax(dim=(2, 3)))
        x = x * torch.sigmoid(att)[:, :, None, None]
        return self.SpatialGate(x)


class BAMSource(nn.Module):
    """Jongchan/attention-module ``MODELS/bam.py`` (with the stray line that raises removed):
    ``(1 + sigmoid(Mc * Ms)) * x``."""

    def __init__(self, c, r=16, dilation=4):
        super().__init__()
        h = c // r
        self.channel_att = nn.Module()
        self.channel_att.gate_c = nn.Sequential()
        g = self.channel_att.gate_c
        g.add_module('flatten', Flatten())
        g.add_module('gate_c_fc_0', nn.Linear(c, h))
        g.add_module('gate_c_bn_1', nn.BatchNorm1d(h))
        g.add_module('gate_c_relu_1', nn.ReLU())
        g.add_module('gate_c_fc_final', nn.Linear(h, c))
        self.spatial_att = nn.Module()
        self.spatial_att.gate_s = nn.Sequential()
        s = self.spatial_att.gate_s
        s.add_module('gate_s_conv_reduce0', nn.Conv2d(c, h, 1))
        s.add_module('gate_s_bn_reduce0', nn.BatchNorm2d(h))
        s.add_module('gate_s_relu_reduce0', nn.ReLU())
        for i in range(2):
            s.add_module(f'gate_s_conv_di_{i}', nn.Conv2d(h, h, 3, padding=dilation,
                                                          dilation=dilation))
            s.add_module(f'gate_s_bn_di_{i}', nn.BatchNorm2d(h))
            s.add_module(f'gate_s_relu_di_{i}', nn.ReLU())
        s.add_module('gate_s_conv_final', nn.Conv2d(h, 1, 1))

    def forward(self, x):
        mc = self.channel_att.gate_c(x.mean(dim=(2, 3)))[:, :, None, None]
        ms = self.spatial_att.gate_s(x)
        return (1 + torch.sigmoid(mc * ms)) * x


class ECASource(nn.Module):
    """BangguWu/ECANet ``eca_layer``: GAP -> Conv1d over channels -> sigmoid."""

    def __init__(self, k):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)

    def forward(self, x):
        y = self.conv(x.mean(dim=(2, 3))[:, None, :])[:, 0]
        return x * torch.sigmoid(y)[:, :, None, None]


class SGESource(nn.Module):
    """implus/PytorchInsight ``SpatialGroupEnhance``."""

    def __init__(self, groups=64):
        super().__init__()
        self.groups = groups
        self.weight = nn.Parameter(torch.zeros(1, groups, 1, 1))
        self.bias = nn.Parameter(torch.ones(1, groups, 1, 1))

    def forward(self, x):
        n, c, h, w = x.shape
        g = self.groups
        xg = x.reshape(n, g, c // g, h, w)
        sim = (xg * xg.mean(dim=(3, 4), keepdim=True)).sum(dim=2)  # (n, g, h, w)
        flat = sim.reshape(n, g, h * w)
        centred = flat - flat.mean(dim=2, keepdim=True)
        # unbiased std, 1e-5 added after the square root
        std = (centred.pow(2).sum(dim=2, keepdim=True) / (h * w - 1)).sqrt() + 1e-5
        t = (centred / std).reshape(n, g, h, w) * self.weight + self.bias
        return (xg * torch.sigmoid(t)[:, :, None]).reshape(n, c, h, w)


class SRMSource(nn.Module):
    """hyunjaelee410/style-based-recalibration-module ``SRMLayer``, op by op: the mean and the
    unbiased variance (+ 1e-5, then the square root) over the flattened positions, stacked as
    (N, C, 2), weighted by ``cfc`` and summed over the pair, BN, sigmoid."""

    def __init__(self, c):
        super().__init__()
        self.cfc = nn.Parameter(torch.zeros(c, 2))
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        n, c = x.shape[:2]
        mean = x.view(n, c, -1).mean(dim=2, keepdim=True)
        std = (x.view(n, c, -1).var(dim=2, keepdim=True) + 1e-5).sqrt()
        z = torch.sum(torch.cat((mean, std), dim=2) * self.cfc[None, :, :], dim=2)
        return x * torch.sigmoid(self.bn(z[:, :, None, None]))


def dct_filter(channels, size, num_freq=16):
    """cfzd/FcaNet's fixed basis for 'top16', written from the paper's DCT-II definition."""
    top_u = [0, 0, 6, 0, 0, 1, 1, 4, 5, 1, 3, 0, 0, 0, 3, 2]
    top_v = [0, 1, 0, 5, 2, 0, 2, 0, 0, 6, 0, 4, 6, 3, 5, 2]
    scale = size // 7

    def basis(pos, freq):
        v = math.cos(math.pi * freq * (pos + 0.5) / size) / math.sqrt(size)
        return v if freq == 0 else v * math.sqrt(2)

    out = torch.zeros(channels, size, size)
    part = channels // num_freq
    for i in range(num_freq):
        u, v = top_u[i] * scale, top_v[i] * scale
        for a in range(size):
            for b in range(size):
                out[i * part:(i + 1) * part, a, b] = basis(a, u) * basis(b, v)
    return out


class FcaSource(nn.Module):
    """cfzd/FcaNet ``MultiSpectralAttentionLayer`` (``att.dct_layer.weight`` is a buffer,
    ``att.fc`` = Linear, ReLU, Linear, Sigmoid, no biases)."""

    def __init__(self, c, size, r=16):
        super().__init__()
        self.size = size
        self.dct_layer = nn.Module()
        self.dct_layer.register_buffer('weight', dct_filter(c, size))
        self.fc = nn.Sequential(nn.Linear(c, c // r, bias=False), nn.ReLU(),
                                nn.Linear(c // r, c, bias=False), nn.Sigmoid())

    def forward(self, x):
        if x.shape[2:] != (self.size, self.size):
            x_pooled = F.adaptive_avg_pool2d(x, self.size)
        else:
            x_pooled = x
        y = (x_pooled * self.dct_layer.weight).sum(dim=(2, 3))
        return x * self.fc(y)[:, :, None, None]


class TripletSource(nn.Module):
    """landskape-ai/triplet-attention ``MODELS/triplet_attention.py`` (the file their ResNet
    and released weights use): ``ChannelGateH`` on x with C and H swapped, ``ChannelGateW``
    with C and W swapped, ``SpatialGate`` on x; the mean of the three."""

    def __init__(self, kernel_size=7):
        super().__init__()
        self.ChannelGateH = ZGate(kernel_size)
        self.ChannelGateW = ZGate(kernel_size)
        self.SpatialGate = ZGate(kernel_size)

    def forward(self, x):
        a = self.ChannelGateH(x.transpose(1, 2)).transpose(1, 2)
        b = self.ChannelGateW(x.transpose(1, 3)).transpose(1, 3)
        return (self.SpatialGate(x) + a + b) / 3


class GCSource(nn.Module):
    """xvjiarui/GCNet ``ContextBlock`` (att pooling, channel_add)."""

    def __init__(self, c, ratio):
        super().__init__()
        p = int(c * ratio)
        self.conv_mask = nn.Conv2d(c, 1, 1)
        self.channel_add_conv = nn.Sequential(nn.Conv2d(c, p, 1), nn.LayerNorm([p, 1, 1]),
                                              nn.ReLU(), nn.Conv2d(p, c, 1))

    def forward(self, x):
        n, c, h, w = x.shape
        mask = torch.softmax(self.conv_mask(x).reshape(n, h * w), dim=1)
        context = torch.einsum('nck,nk->nc', x.reshape(n, c, h * w), mask)
        return x + self.channel_add_conv(context[:, :, None, None])
