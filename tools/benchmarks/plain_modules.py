"""Plain implementations of mmattn's attention modules, for the module benchmark.

Each class here computes its module's formula as the modules' specification states it, in plain
PyTorch written the way people usually write it: ``nn.AdaptiveAvgPool2d``, ``nn.Conv2d``,
``x * gate``, the attention matrices of the context modules formed explicitly (HW x HW for
Non-local and DANet's PAM, the criss-cross energies by batched products). Nothing here imports
mmattn, and nothing is fused or blocked: these are the baselines ``module_speed.py`` times
mmattn's modules against, and the references its correctness checks compare with.

:func:`build_plain` takes one of mmattn's modules, reads its hyper-parameters from its
attributes, builds the plain counterpart and copies the module's ``state_dict`` into it
(``strict``: a weight without a place in the plain module is an error). Only the
configurations the benchmark uses (the registered defaults) are covered; another configuration
raises ``NotImplementedError`` naming what is missing, rather than timing the wrong formula.
"""
from typing import Callable, Dict

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ['PLAIN_BUILDERS', 'NO_PLAIN', 'build_plain']

# Registered modules that have no plain version here, with the reason (the benchmark prints
# "no plain version" for them; tests/test_tools/test_module_speed.py requires every registered
# module to be either in PLAIN_BUILDERS or here).
NO_PLAIN: Dict[str, str] = {}


def _unsupported(name, what):
    raise NotImplementedError(f'plain {name}: only the default configuration is implemented '
                              f'({what})')


class ConvBNAct(nn.Module):
    """conv -> BN [-> ReLU]; attribute names conv/bn as in mmcv's ConvModule."""

    def __init__(self, cin, cout, k=1, padding=0, dilation=1, groups=1, bias=False, act=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=padding, dilation=dilation, groups=groups,
                              bias=bias)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU(inplace=True) if act else None

    def forward(self, x):
        x = self.bn(self.conv(x))
        return self.act(x) if self.act is not None else x


def conv_bn(cin, cout, bias, relu):
    """conv1x1 -> BN [-> ReLU] as an nn.Sequential (keys ``0.*``, ``1.*``)."""
    layers = [nn.Conv2d(cin, cout, 1, bias=bias), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


# -- channel attention ------------------------------------------------------------------------
class SE(nn.Module):
    """GAP -> 1x1 conv C->C/r (bias) -> ReLU -> 1x1 conv (bias) -> sigmoid -> x * g."""

    def __init__(self, channels, rd):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, rd, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(rd, channels, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        return x * self.sigmoid(self.fc2(self.relu(self.fc1(self.pool(x)))))


class ECA(nn.Module):
    """GAP -> Conv1d(1, 1, k, pad (k-1)/2, no bias) along the channels -> sigmoid -> x * g."""

    def __init__(self, k):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        y = self.pool(x)  # (N, C, 1, 1)
        y = self.conv(y.squeeze(-1).transpose(-1, -2)).transpose(-1, -2).unsqueeze(-1)
        return x * self.sigmoid(y)


class GatherExciteThetaMinus(nn.Module):
    """GE-theta-minus, global extent: x * sigmoid(GAP(x)); no parameters."""

    def __init__(self):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return x * torch.sigmoid(self.pool(x))


class SRM(nn.Module):
    """Style pooling (mean, sqrt(unbiased var + eps)) -> channel-wise FC -> BN -> sigmoid."""

    def __init__(self, channels, eps):
        super().__init__()
        self.eps = eps
        self.cfc = nn.Parameter(torch.zeros(channels, 2))
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        n, c = x.shape[:2]
        flat = x.view(n, c, -1)
        mean = flat.mean(-1, keepdim=True)
        std = (flat.var(-1, keepdim=True) + self.eps).sqrt()
        z = (torch.cat([mean, std], -1) * self.cfc[None]).sum(-1)  # (N, C)
        g = torch.sigmoid(self.bn(z[:, :, None, None]))
        return x * g


class FcaNet(nn.Module):
    """Adaptive pool to the DCT size -> sum(x * basis) -> Linear -> ReLU -> Linear -> sigmoid."""

    def __init__(self, channels, rd, dct_size):
        super().__init__()
        self.dct_size = dct_size
        self.register_buffer('dct_basis', torch.zeros(channels, *dct_size))
        self.fc1 = nn.Linear(channels, rd, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(rd, channels, bias=False)

    def forward(self, x):
        n, c = x.shape[:2]
        y = x
        if tuple(x.shape[2:]) != self.dct_size:
            y = F.adaptive_avg_pool2d(x, self.dct_size)
        y = (y * self.dct_basis).sum(dim=(2, 3))
        g = torch.sigmoid(self.fc2(self.relu(self.fc1(y))))
        return x * g.view(n, c, 1, 1)


class GSoP(nn.Module):
    """ReLU -> conv C->d + BN + ReLU -> covariance -> BN -> row conv -> conv -> sigmoid."""

    def __init__(self, channels, d, stride):
        super().__init__()
        self.dr_conv = nn.Conv2d(channels, d, 1, stride=stride)
        self.dr_norm = nn.BatchNorm2d(d)
        self.row_norm = nn.BatchNorm2d(d)
        self.row_conv = nn.Conv2d(d, 4 * d, (d, 1), groups=d)
        self.fc = nn.Conv2d(4 * d, channels, 1)

    def forward(self, x):
        y = F.relu(self.dr_norm(self.dr_conv(F.relu(x))))
        n, d = y.shape[:2]
        f = y.view(n, d, -1)
        f = f - f.mean(-1, keepdim=True)
        cov = torch.bmm(f, f.transpose(1, 2)) / f.shape[-1]  # (N, d, d)
        z = self.row_conv(self.row_norm(cov.unsqueeze(-1)))
        return x * torch.sigmoid(self.fc(z))


class SPA(nn.Module):
    """Adaptive average pools 1, 2, 4 -> concat (21C) -> Linear -> ReLU -> Linear -> sigmoid."""

    def __init__(self, channels, rd, sizes):
        super().__init__()
        self.pools = nn.ModuleList([nn.AdaptiveAvgPool2d(s) for s in sizes])
        self.fc1 = nn.Linear(channels * sum(s * s for s in sizes), rd, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(rd, channels, bias=False)

    def forward(self, x):
        n, c = x.shape[:2]
        y = torch.cat([pool(x).view(n, -1) for pool in self.pools], dim=1)
        g = torch.sigmoid(self.fc2(self.relu(self.fc1(y))))
        return x * g.view(n, c, 1, 1)


class CSE(nn.Module):
    """GAP -> Linear C->C/r (bias) -> ReLU -> Linear (bias) -> sigmoid -> x * g."""

    def __init__(self, channels, rd):
        super().__init__()
        self.fc1 = nn.Linear(channels, rd)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(rd, channels)

    def forward(self, x):
        n, c = x.shape[:2]
        g = torch.sigmoid(self.fc2(self.relu(self.fc1(x.view(n, c, -1).mean(dim=2)))))
        return x * g.view(n, c, 1, 1)


class SSE(nn.Module):
    """1x1 conv C->1 (bias) -> sigmoid -> x * s."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.conv(x))


class SCSE(nn.Module):
    """max(cSE(x), sSE(x)) (the authors' code) or their sum (the paper)."""

    def __init__(self, channels, rd, fusion):
        super().__init__()
        self.cSE = CSE(channels, rd)
        self.sSE = SSE(channels)
        self.fusion = fusion

    def forward(self, x):
        if self.fusion == 'max':
            return torch.max(self.cSE(x), self.sSE(x))
        return self.cSE(x) + self.sSE(x)


# -- spatial and hybrid attention -------------------------------------------------------------
class BAM(nn.Module):
    """(1 + sigmoid(Mc(x) * Ms(x))) * x; the paper's sum with fusion='sum'."""

    def __init__(self, channels, hidden, dilation, num_dilated, fusion):
        super().__init__()
        self.fusion = fusion
        self.channel_fc1 = nn.Linear(channels, hidden)
        self.channel_norm = nn.BatchNorm1d(hidden)
        self.channel_fc2 = nn.Linear(hidden, channels)
        self.spatial_reduce = ConvBNAct(channels, hidden, 1, bias=True)
        self.spatial_dilated = nn.Sequential(*[
            ConvBNAct(hidden, hidden, 3, padding=dilation, dilation=dilation, bias=True)
            for _ in range(num_dilated)])
        self.spatial_out = nn.Conv2d(hidden, 1, 1)

    def forward(self, x):
        mc = F.adaptive_avg_pool2d(x, 1).flatten(1)
        mc = self.channel_fc2(F.relu(self.channel_norm(self.channel_fc1(mc))))
        mc = mc[:, :, None, None]
        ms = self.spatial_out(self.spatial_dilated(self.spatial_reduce(x)))
        att = mc * ms if self.fusion == 'product' else mc + ms
        return (1 + torch.sigmoid(att)) * x


class ZPoolGate(nn.Module):
    """cat[max, mean] over dim 1 -> k x k conv 2->1 (no bias) -> BN -> sigmoid -> x * s."""

    def __init__(self, k):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, k, padding=(k - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x):
        pooled = torch.cat([torch.max(x, 1, keepdim=True)[0], torch.mean(x, 1, keepdim=True)],
                           dim=1)
        return x * torch.sigmoid(self.bn(self.conv(pooled)))


class CBAM(nn.Module):
    """Shared MLP on avg- and max-pooled vectors, summed, sigmoid, x * g; then a spatial gate."""

    def __init__(self, channels, hidden, k, pool_types, no_spatial):
        super().__init__()
        self.pool_types = pool_types
        self.fc1 = nn.Linear(channels, hidden)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, channels)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        self.spatial_gate = None if no_spatial else ZPoolGate(k)

    def forward(self, x):
        n, c = x.shape[:2]
        logits = 0
        for kind in self.pool_types:
            pooled = (self.avg_pool(x) if kind == 'avg' else self.max_pool(x)).view(n, c)
            logits = logits + self.fc2(self.relu(self.fc1(pooled)))
        x = x * torch.sigmoid(logits).view(n, c, 1, 1)
        if self.spatial_gate is not None:
            x = self.spatial_gate(x)
        return x


class CoordAttention(nn.Module):
    """Pool along W and along H -> shared conv + BN + h_swish -> two convs -> x * a_w * a_h."""

    def __init__(self, channels, mip):
        super().__init__()
        self.pool_h = nn.AdaptiveAvgPool2d((None, 1))
        self.pool_w = nn.AdaptiveAvgPool2d((1, None))
        self.conv1 = nn.Conv2d(channels, mip, 1)
        self.bn1 = nn.BatchNorm2d(mip)
        self.act = nn.Hardswish()
        self.conv_h = nn.Conv2d(mip, channels, 1)
        self.conv_w = nn.Conv2d(mip, channels, 1)

    def forward(self, x):
        h, w = x.shape[2:]
        x_h = self.pool_h(x)                       # (N, C, H, 1)
        x_w = self.pool_w(x).permute(0, 1, 3, 2)   # (N, C, W, 1)
        y = self.act(self.bn1(self.conv1(torch.cat([x_h, x_w], dim=2))))
        y_h, y_w = torch.split(y, [h, w], dim=2)
        a_h = torch.sigmoid(self.conv_h(y_h))
        a_w = torch.sigmoid(self.conv_w(y_w.permute(0, 1, 3, 2)))
        return x * a_w * a_h


class SGE(nn.Module):
    """Per group: spatial similarity to the group's mean vector, normalised, sigmoid gate."""

    def __init__(self, groups, eps):
        super().__init__()
        self.groups = groups
        self.eps = eps
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.weight = nn.Parameter(torch.zeros(1, groups, 1, 1))
        self.bias = nn.Parameter(torch.ones(1, groups, 1, 1))

    def forward(self, x):
        n, c, h, w = x.shape
        x = x.view(n * self.groups, -1, h, w)
        xn = (x * self.avg_pool(x)).sum(dim=1, keepdim=True)
        t = xn.view(n * self.groups, -1)
        t = t - t.mean(dim=1, keepdim=True)
        t = t / (t.std(dim=1, keepdim=True) + self.eps)
        t = t.view(n, self.groups, h, w) * self.weight + self.bias
        x = x * torch.sigmoid(t.view(n * self.groups, 1, h, w))
        return x.view(n, c, h, w)


class SimAM(nn.Module):
    """x * sigmoid(d / (4 (sum(d) / n + lambda)) + 0.5), d = (x - mean)^2, n = HW - 1."""

    def __init__(self, e_lambda):
        super().__init__()
        self.e_lambda = e_lambda

    def forward(self, x):
        n = x.shape[2] * x.shape[3] - 1
        d = (x - x.mean(dim=(2, 3), keepdim=True)).pow(2)
        y = d / (4 * (d.sum(dim=(2, 3), keepdim=True) / n + self.e_lambda)) + 0.5
        return x * torch.sigmoid(y)


class TripletAttention(nn.Module):
    """Z-pool gates over (C, W) after C<->H, over (H, C) after C<->W, and over (H, W); mean."""

    def __init__(self, k, no_spatial):
        super().__init__()
        self.cw = ZPoolGate(k)
        self.hc = ZPoolGate(k)
        self.hw = None if no_spatial else ZPoolGate(k)

    def forward(self, x):
        out_cw = self.cw(x.permute(0, 2, 1, 3).contiguous()).permute(0, 2, 1, 3).contiguous()
        out_hc = self.hc(x.permute(0, 3, 2, 1).contiguous()).permute(0, 3, 2, 1).contiguous()
        if self.hw is None:
            return 1 / 2 * (out_cw + out_hc)
        return 1 / 3 * (self.hw(x) + out_cw + out_hc)


class SelectiveKernel(nn.Module):
    """M dilated grouped 3x3 branches; GAP of their sum -> fc -> M logits per channel;
    softmax across the branches weights them."""

    def __init__(self, channels, num_branches, groups, d):
        super().__init__()
        self.m = num_branches
        self.branches = nn.ModuleList([
            ConvBNAct(channels, channels, 3, padding=i, dilation=i, groups=groups)
            for i in range(1, num_branches + 1)])
        self.fc_reduce = ConvBNAct(channels, d, 1)
        self.fc_select = nn.Conv2d(d, num_branches * channels, 1, bias=False)

    def forward(self, x):
        n, c = x.shape[:2]
        feats = [branch(x) for branch in self.branches]
        u = feats[0]
        for f in feats[1:]:
            u = u + f
        z = self.fc_reduce(F.adaptive_avg_pool2d(u, 1))
        a = self.fc_select(z).view(n, self.m, c, 1, 1).softmax(dim=1)
        out = feats[0] * a[:, 0]
        for i in range(1, self.m):
            out = out + feats[i] * a[:, i]
        return out


class PreActUnit(nn.Module):
    """x + conv1x1(BN-ReLU(conv3x3(BN-ReLU(conv1x1(BN-ReLU(x))))))."""

    def __init__(self, channels, mid):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, mid, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, channels, 1, bias=False)

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(F.relu(self.bn3(out)))
        return x + out


class ResidualAttention(nn.Module):
    """(1 + M(x)) * T(x) between p units before and after; M an hourglass of max-pools,
    residual units and bilinear upsampling, then BN-ReLU-conv-BN-ReLU-conv-sigmoid."""

    def __init__(self, channels, levels, p, t, r, align_corners):
        super().__init__()
        mid = max(1, channels // 4)

        def units(k):
            return nn.Sequential(*[PreActUnit(channels, mid) for _ in range(k)])

        self.levels = levels
        self.align_corners = align_corners
        self.pre = units(p)
        self.trunk = units(t)
        self.down = nn.ModuleList([units(2 * r if i == levels - 1 else r)
                                   for i in range(levels)])
        self.skips = nn.ModuleList([units(1) for _ in range(levels - 1)])
        self.up = nn.ModuleList([units(r) for _ in range(levels - 1)])
        self.mask_bn1 = nn.BatchNorm2d(channels)
        self.mask_conv1 = nn.Conv2d(channels, channels, 1, bias=False)
        self.mask_bn2 = nn.BatchNorm2d(channels)
        self.mask_conv2 = nn.Conv2d(channels, channels, 1, bias=False)
        self.post = units(p)

    def forward(self, x):
        x = self.pre(x)
        trunk = self.trunk(x)
        m, kept = x, []
        for i in range(self.levels):
            m = self.down[i](F.max_pool2d(m, 3, stride=2, padding=1))
            if i < self.levels - 1:
                kept.append(m)
        for i in reversed(range(self.levels - 1)):
            skip = self.skips[i](kept[i])
            m = F.interpolate(m, size=skip.shape[2:], mode='bilinear',
                              align_corners=self.align_corners)
            m = self.up[i](m + skip)
        m = F.interpolate(m, size=x.shape[2:], mode='bilinear', align_corners=self.align_corners)
        m = self.mask_conv1(F.relu(self.mask_bn1(m)))
        m = self.mask_conv2(F.relu(self.mask_bn2(m)))
        return self.post((1 + torch.sigmoid(m)) * trunk)


# -- self-attention and context modules -------------------------------------------------------
class NonLocal(nn.Module):
    """Embedded Gaussian non-local block with the HW x HW affinity written out.

    ``sub_sample``: phi and g read the input max-pooled 2x2 (stride 2, ceil mode), as the
    authors' code pools before those convs: HW x HW/4 affinities.
    """

    def __init__(self, channels, inner, use_scale, sub_sample=False):
        super().__init__()
        self.inner = inner
        self.use_scale = use_scale
        self.g = nn.Conv2d(channels, inner, 1)
        self.theta = nn.Conv2d(channels, inner, 1)
        self.phi = nn.Conv2d(channels, inner, 1)
        self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True) if sub_sample else None
        self.conv_out = nn.Conv2d(inner, channels, 1)
        self.norm = nn.BatchNorm2d(channels)

    def forward(self, x):
        n, _, h, w = x.shape
        src = self.pool(x) if self.pool is not None else x
        g_x = self.g(src).view(n, self.inner, -1).permute(0, 2, 1)        # (N, M, C')
        theta_x = self.theta(x).view(n, self.inner, -1).permute(0, 2, 1)  # (N, HW, C')
        phi_x = self.phi(src).view(n, self.inner, -1)                     # (N, C', M)
        f = torch.matmul(theta_x, phi_x)                                  # (N, HW, M)
        if self.use_scale:
            f = f / self.inner**0.5
        y = torch.matmul(f.softmax(dim=-1), g_x)
        y = y.permute(0, 2, 1).reshape(n, self.inner, h, w)
        return x + self.norm(self.conv_out(y))


class GlobalContext(nn.Module):
    """Softmax attention pooling to one context vector -> conv-LN-ReLU-conv -> x + t."""

    def __init__(self, channels, planes):
        super().__init__()
        self.conv_mask = nn.Conv2d(channels, 1, 1)
        self.channel_add_conv = nn.Sequential(
            nn.Conv2d(channels, planes, 1), nn.LayerNorm([planes, 1, 1]),
            nn.ReLU(inplace=True), nn.Conv2d(planes, channels, 1))

    def forward(self, x):
        n, c, h, w = x.shape
        mask = self.conv_mask(x).view(n, 1, h * w).softmax(dim=2)        # (N, 1, HW)
        context = torch.matmul(x.view(n, 1, c, h * w), mask.view(n, 1, h * w, 1))
        return x + self.channel_add_conv(context.view(n, c, 1, 1))


class DoubleAttention(nn.Module):
    """A^2: G = A softmax(B)^T (softmax over positions), Z = G softmax(V) (over c_n)."""

    def __init__(self, channels, c_m, c_n):
        super().__init__()
        self.c_m, self.c_n = c_m, c_n
        self.conv_a = nn.Conv2d(channels, c_m, 1)
        self.conv_b = nn.Conv2d(channels, c_n, 1)
        self.conv_v = nn.Conv2d(channels, c_n, 1)
        self.conv_out = nn.Conv2d(c_m, channels, 1)

    def forward(self, x):
        n, _, h, w = x.shape
        a = self.conv_a(x).view(n, self.c_m, -1)
        b = F.softmax(self.conv_b(x).view(n, self.c_n, -1), dim=-1)
        v = F.softmax(self.conv_v(x).view(n, self.c_n, -1), dim=1)
        g = torch.bmm(a, b.permute(0, 2, 1))
        z = torch.bmm(g, v).view(n, self.c_m, h, w)
        return x + self.conv_out(z)


class DANetPAM(nn.Module):
    """gamma * (V softmax(Q^T K)^T) + x with the HW x HW attention written out."""

    def __init__(self, channels, key_channels):
        super().__init__()
        self.query_conv = nn.Conv2d(channels, key_channels, 1)
        self.key_conv = nn.Conv2d(channels, key_channels, 1)
        self.value_conv = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        n, c, h, w = x.shape
        q = self.query_conv(x).view(n, -1, h * w).permute(0, 2, 1)
        k = self.key_conv(x).view(n, -1, h * w)
        attention = F.softmax(torch.bmm(q, k), dim=-1)
        v = self.value_conv(x).view(n, -1, h * w)
        out = torch.bmm(v, attention.permute(0, 2, 1)).view(n, c, h, w)
        return self.gamma * out + x


class DANetCAM(nn.Module):
    """gamma * (softmax(rowmax(X X^T) - X X^T) X) + x."""

    def __init__(self):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        n, c, h, w = x.shape
        q = x.view(n, c, -1)
        energy = torch.bmm(q, q.permute(0, 2, 1))
        energy_new = torch.max(energy, -1, keepdim=True)[0].expand_as(energy) - energy
        attention = F.softmax(energy_new, dim=-1)
        out = torch.bmm(attention, q).view(n, c, h, w)
        return self.gamma * out + x


class CrissCross(nn.Module):
    """Criss-cross attention by batched column and row products, one joint softmax over the
    H + W energies (the column's own pixel at -inf), applied ``recurrence`` times."""

    def __init__(self, channels, key_channels, recurrence):
        super().__init__()
        self.recurrence = recurrence
        self.query_conv = nn.Conv2d(channels, key_channels, 1)
        self.key_conv = nn.Conv2d(channels, key_channels, 1)
        self.value_conv = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def attend(self, x):
        n, c, h, w = x.shape
        q, k, v = self.query_conv(x), self.key_conv(x), self.value_conv(x)
        ck = q.shape[1]
        # columns: one (H x H) energy matrix per (sample, column)
        q_h = q.permute(0, 3, 2, 1).reshape(n * w, h, ck)
        k_h = k.permute(0, 3, 1, 2).reshape(n * w, ck, h)
        diag = torch.diag(torch.full((h, ), float('inf'), dtype=x.dtype, device=x.device))
        e_h = (torch.bmm(q_h, k_h) - diag).view(n, w, h, h).permute(0, 2, 1, 3)  # (N,H,W,H)
        # rows: one (W x W) energy matrix per (sample, row)
        q_w = q.permute(0, 2, 3, 1).reshape(n * h, w, ck)
        k_w = k.permute(0, 2, 1, 3).reshape(n * h, ck, w)
        e_w = torch.bmm(q_w, k_w).view(n, h, w, w)
        att = F.softmax(torch.cat([e_h, e_w], dim=3), dim=3)
        a_h = att[..., :h].permute(0, 2, 1, 3).reshape(n * w, h, h)
        a_w = att[..., h:].reshape(n * h, w, w)
        v_h = v.permute(0, 3, 1, 2).reshape(n * w, c, h)
        v_w = v.permute(0, 2, 1, 3).reshape(n * h, c, w)
        out_h = torch.bmm(v_h, a_h.permute(0, 2, 1)).view(n, w, c, h).permute(0, 2, 3, 1)
        out_w = torch.bmm(v_w, a_w.permute(0, 2, 1)).view(n, h, c, w).permute(0, 2, 1, 3)
        return self.gamma * (out_h + out_w) + x

    def forward(self, x):
        for _ in range(self.recurrence):
            x = self.attend(x)
        return x


def _pyramid(x, sizes):
    """(N, C, H, W) -> (N, C, sum s*s) adaptive average pools, flattened and concatenated."""
    n, c = x.shape[:2]
    return torch.cat([F.adaptive_avg_pool2d(x, s).view(n, c, -1) for s in sizes], dim=2)


class APNBlock(nn.Module):
    """ANN's APNB: pixels attend to pyramid-pooled anchors; concat with x -> conv-BN-ReLU."""

    def __init__(self, channels, key_channels, value_channels, out_channels, sizes, dropout,
                 bias):
        super().__init__()
        self.key_channels, self.value_channels, self.sizes = key_channels, value_channels, sizes
        self.key_project = ConvBNAct(channels, key_channels, 1, bias=bias)
        self.value_project = nn.Conv2d(channels, value_channels, 1)
        self.out_project = nn.Conv2d(value_channels, channels, 1)
        self.bottleneck = ConvBNAct(2 * channels, out_channels, 1, bias=bias)
        self.dropout = nn.Dropout2d(dropout)

    def forward(self, x):
        n, _, h, w = x.shape
        key_full = self.key_project(x)
        query = key_full.view(n, self.key_channels, -1).permute(0, 2, 1)   # (N, HW, Ck)
        key = _pyramid(key_full, self.sizes)                                 # (N, Ck, S)
        value = _pyramid(self.value_project(x), self.sizes).permute(0, 2, 1)  # (N, S, Cv)
        sim = F.softmax(torch.matmul(query, key) * self.key_channels**-0.5, dim=-1)
        context = torch.matmul(sim, value).permute(0, 2, 1).reshape(n, -1, h, w)
        context = self.out_project(context)
        return self.dropout(self.bottleneck(torch.cat([context, x], dim=1)))


class AFNBlock(nn.Module):
    """ANN's AFNB: high-level pixels attend to the low-level map's pyramid-pooled anchors."""

    def __init__(self, channels, low_channels, key_channels, value_channels, out_channels,
                 sizes, dropout, bias):
        super().__init__()
        self.key_channels, self.sizes = key_channels, sizes
        self.query_project = ConvBNAct(channels, key_channels, 1, bias=bias)
        self.key_project = ConvBNAct(low_channels, key_channels, 1, bias=bias)
        self.value_project = nn.Conv2d(low_channels, value_channels, 1)
        self.out_project = nn.Conv2d(value_channels, out_channels, 1)
        self.bottleneck = ConvBNAct(out_channels + channels, out_channels, 1, bias=bias,
                                    act=False)
        self.dropout = nn.Dropout2d(dropout)

    def forward(self, low, high):
        n, _, h, w = high.shape
        query = self.query_project(high).view(n, self.key_channels, -1).permute(0, 2, 1)
        key = _pyramid(self.key_project(low), self.sizes)
        value = _pyramid(self.value_project(low), self.sizes).permute(0, 2, 1)
        sim = F.softmax(torch.matmul(query, key) * self.key_channels**-0.5, dim=-1)
        context = torch.matmul(sim, value).permute(0, 2, 1).reshape(n, -1, h, w)
        context = self.out_project(context)
        return self.dropout(self.bottleneck(torch.cat([context, high], dim=1)))


class ObjectContext(nn.Module):
    """OCR: soft object regions from the coarse logits, pixel-region attention, fusion."""

    def __init__(self, channels, mid, key_channels, out_channels, dropout, bias):
        super().__init__()
        self.key_channels = key_channels
        self.mid_conv = ConvBNAct(channels, mid, 3, padding=1, bias=bias)
        self.f_pixel = nn.Sequential(ConvBNAct(mid, key_channels),
                                     ConvBNAct(key_channels, key_channels))
        self.f_object = nn.Sequential(ConvBNAct(mid, key_channels),
                                      ConvBNAct(key_channels, key_channels))
        self.f_down = ConvBNAct(mid, key_channels)
        self.f_up = ConvBNAct(key_channels, mid)
        self.bottleneck = ConvBNAct(2 * mid, out_channels)
        self.dropout = nn.Dropout2d(dropout)

    def forward(self, feats, logits):
        feats = self.mid_conv(feats)
        n, c, h, w = feats.shape
        k = logits.shape[1]
        probs = F.softmax(logits.view(n, k, -1), dim=2)                       # (N, K, HW)
        regions = torch.matmul(probs, feats.view(n, c, -1).permute(0, 2, 1))  # (N, K, C)
        regions = regions.permute(0, 2, 1).unsqueeze(3)                       # (N, C, K, 1)
        query = self.f_pixel(feats).view(n, self.key_channels, -1).permute(0, 2, 1)
        key = self.f_object(regions).view(n, self.key_channels, -1)
        value = self.f_down(regions).view(n, self.key_channels, -1).permute(0, 2, 1)
        sim = F.softmax(torch.matmul(query, key) * self.key_channels**-0.5, dim=-1)
        context = torch.matmul(sim, value).permute(0, 2, 1).reshape(n, -1, h, w)
        context = self.f_up(context)
        return self.dropout(self.bottleneck(torch.cat([context, feats], dim=1)))


class RGA(nn.Module):
    """Relation-aware global attention on a fixed relation grid (``spatial_size``).

    Spatial branch: position i's relation vector is [theta_i . phi_k, theta_k . phi_i] over the
    grid cells k (theta, phi average-pooled to the grid), formed explicitly (N, 2P, H, W);
    channel branch: the authors' C x C relations of the channels' grid-pooled maps.
    """

    def __init__(self, channels, spatial_size, ic, is_, down_ratio):
        super().__init__()
        self.spatial_size = spatial_size
        s = spatial_size[0] * spatial_size[1]

        def gate_net(cin):
            mid = max(1, cin // down_ratio)
            return nn.Sequential(*conv_bn(cin, mid, False, True), *conv_bn(mid, 1, False, False))

        self.theta_spatial = conv_bn(channels, ic, False, True)
        self.phi_spatial = conv_bn(channels, ic, False, True)
        self.gx_spatial = conv_bn(channels, ic, False, True)
        self.gg_spatial = conv_bn(2 * s, is_, False, True)
        self.W_spatial = gate_net(1 + is_)
        self.theta_channel = conv_bn(s, is_, False, True)
        self.phi_channel = conv_bn(s, is_, False, True)
        self.gx_channel = conv_bn(s, is_, False, True)
        self.gg_channel = conv_bn(2 * channels, ic, False, True)
        self.W_channel = gate_net(1 + ic)

    def forward(self, x):
        n, c, h, w = x.shape
        # spatial
        theta = self.theta_spatial(x)
        phi = self.phi_spatial(x)
        ic = theta.shape[1]
        theta_g = F.adaptive_avg_pool2d(theta, self.spatial_size).view(n, ic, -1)
        phi_g = F.adaptive_avg_pool2d(phi, self.spatial_size).view(n, ic, -1)
        theta_f, phi_f = theta.view(n, ic, -1), phi.view(n, ic, -1)
        rel_in = torch.bmm(theta_f.permute(0, 2, 1), phi_g)    # (N, HW, P): theta_i . phi_k
        rel_out = torch.bmm(theta_g.permute(0, 2, 1), phi_f)   # (N, P, HW): theta_k . phi_i
        joint = torch.cat([rel_in.permute(0, 2, 1), rel_out], dim=1).view(n, -1, h, w)
        joint = self.gg_spatial(joint)
        unary = torch.mean(self.gx_spatial(x), dim=1, keepdim=True)
        x = torch.sigmoid(self.W_spatial(torch.cat([unary, joint], dim=1))) * x
        # channel
        xc = F.adaptive_avg_pool2d(x, self.spatial_size).view(n, c, -1)
        xc = xc.permute(0, 2, 1).unsqueeze(-1)                  # (N, P, C, 1)
        theta_c = self.theta_channel(xc).squeeze(-1).permute(0, 2, 1)  # (N, C, is)
        phi_c = self.phi_channel(xc).squeeze(-1)                        # (N, is, C)
        gc = torch.matmul(theta_c, phi_c)                               # (N, C, C)
        joint_c = torch.cat([gc.permute(0, 2, 1).unsqueeze(-1), gc.unsqueeze(-1)], dim=1)
        joint_c = self.gg_channel(joint_c)
        unary_c = torch.mean(self.gx_channel(xc), dim=1, keepdim=True)
        w_c = self.W_channel(torch.cat([unary_c, joint_c], dim=1)).transpose(1, 2)
        return torch.sigmoid(w_c) * x


class ChannelIAU(nn.Module):
    """softmax(X X^T) X over channels -> conv1x1 + BN -> + x."""

    def __init__(self, channels):
        super().__init__()
        self.W1 = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels))

    def forward(self, x):
        n, c, h, w = x.shape
        g = x.view(n, c, -1)
        f = F.softmax(torch.bmm(g, g.permute(0, 2, 1)), dim=-1)
        y = torch.bmm(f, g).view(n, c, h, w)
        return self.W1(y) + x


class SpatialIAU(nn.Module):
    """P soft part maps pool P part vectors; part-to-part relations update them; their mean
    and the global average are projected to one channel vector added to x."""

    def __init__(self, channels, parts, ci):
        super().__init__()
        self.parts = parts
        self.part_attn = conv_bn(channels, parts, True, False)
        self.reduce = nn.Conv2d(channels, ci, 1)
        self.edge = conv_bn(2 * ci, 1, True, False)
        self.node = conv_bn(2 * ci, ci, True, True)
        self.W2 = conv_bn(2 * ci, channels, True, False)

    def forward(self, x):
        n, c, h, w = x.shape
        p = self.parts
        a = torch.sigmoid(self.part_attn(x)).view(n, p, -1)            # (N, P, HW)
        xf = x.view(n, c, -1)
        part = torch.bmm(a, xf.permute(0, 2, 1)).permute(0, 2, 1)      # (N, C, P) sums
        glob = xf.mean(dim=2, keepdim=True)                             # (N, C, 1)
        nodes = self.reduce(torch.cat([part, glob], dim=2).unsqueeze(-1)).squeeze(-1)
        part, glob = nodes[:, :, :p], nodes[:, :, p:]
        ci = part.shape[1]
        diff = torch.abs(part.unsqueeze(3) - part.unsqueeze(2))        # (N, C', P, P)
        edges = torch.cat([diff, glob.unsqueeze(3).expand(n, ci, p, p)], dim=1)
        energy = self.edge(edges).squeeze(1)                            # (N, P, P)
        eye = torch.eye(p, dtype=torch.bool, device=x.device)
        weights = F.softmax(energy.masked_fill(eye, float('-inf')), dim=-1)
        neighbours = torch.bmm(part, weights.permute(0, 2, 1))         # (N, C', P)
        upd = self.node(torch.cat([part, neighbours], dim=1).unsqueeze(-1)).mean(dim=2)
        v = self.W2(torch.cat([upd, glob], dim=1).unsqueeze(-1))       # (N, C, 1, 1)
        return x + v


# -- builders: our module -> the plain module with our weights ---------------------------------
def _width(layer):
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


def _se(m):
    return SE(m.in_channels, _width(m.fc1))


def _eca(m):
    return ECA(m.kernel_size)


def _ge(m):
    if m.variant != 'theta-minus' or m.extent is not None:
        _unsupported('GatherExcite', 'theta-minus with the global extent')
    return GatherExciteThetaMinus()


def _srm(m):
    return SRM(m.in_channels, m.eps)


def _fca(m):
    return FcaNet(m.in_channels, _width(m.fc1), m.dct_size)


def _gsop(m):
    return GSoP(m.in_channels, m.att_dim, m.dr_stride)


def _spa(m):
    return SPA(m.in_channels, _width(m.fc1), m.pool_sizes)


def _cse(m):
    return CSE(m.in_channels, _width(m.fc1))


def _sse(m):
    return SSE(m.in_channels)


def _scse(m):
    return SCSE(m.in_channels, _width(m.cSE.fc1), m.fusion)


def _bam(m):
    convs = m.spatial_dilated
    return BAM(m.in_channels, _width(m.channel_fc1), convs[0].conv.dilation[0], len(convs),
               m.fusion)


def _cbam(m):
    k = m.spatial_gate.conv.kernel_size[0] if m.spatial_gate is not None else 7
    return CBAM(m.in_channels, _width(m.fc1), k, m.pool_types, m.no_spatial)


def _coord(m):
    return CoordAttention(m.in_channels, m.mip)


def _sge(m):
    return SGE(m.groups, m.eps)


def _simam(m):
    return SimAM(m.e_lambda)


def _triplet(m):
    return TripletAttention(m.cw.conv.kernel_size[0], m.no_spatial)


def _sk(m):
    return SelectiveKernel(m.in_channels, m.num_branches, m.groups, m.attn_channels)


def _resatt(m):
    return ResidualAttention(m.in_channels, m.num_downsamples, m.p, m.t, m.r,
                             m.align_corners)


def _nonlocal(m):
    if m.mode != 'embedded_gaussian' or m.norm is None:
        _unsupported('NonLocal', 'embedded Gaussian, with the BN')
    return NonLocal(m.in_channels, m.inter_channels, m.use_scale, m.sub_sample)


def _gc(m):
    if m.pooling_type != 'att' or m.fusion_types != ('channel_add', ):
        _unsupported('GlobalContext', "attention pooling, fusion ('channel_add',)")
    if not isinstance(m.channel_add_conv[1], nn.LayerNorm):
        _unsupported('GlobalContext', 'LayerNorm in the transform')
    return GlobalContext(m.in_channels, m.planes)


def _a2(m):
    return DoubleAttention(m.in_channels, m.c_m, m.c_n)


def _pam(m):
    return DANetPAM(m.in_channels, m.key_channels)


def _cam(m):
    return DANetCAM()


def _cc(m):
    return CrissCross(m.in_channels, m.key_channels, m.recurrence)


def _norm_conv_bias(conv_module):
    return conv_module.conv.bias is not None


def _apnb(m):
    return APNBlock(m.in_channels, m.key_channels, m.value_channels, m.out_channels,
                    m.pool_sizes, m.dropout.p, _norm_conv_bias(m.key_project))


def _afnb(m):
    return AFNBlock(m.in_channels, m.low_in_channels, m.key_channels, m.value_channels,
                    m.out_channels, m.pool_sizes, m.dropout.p, _norm_conv_bias(m.key_project))


def _ocr(m):
    if m.mid_conv is None:
        _unsupported('ObjectContext', 'with the mid_channels projection')
    return ObjectContext(m.in_channels, m.mid_channels, m.key_channels, m.out_channels,
                         m.dropout.p, _norm_conv_bias(m.mid_conv))


def _rga(m):
    if not (m.use_spatial and m.use_channel):
        _unsupported('RGA', 'both branches')
    down = m.W_spatial[0].in_channels // m.W_spatial[0].out_channels
    if max(1, m.W_spatial[0].in_channels // down) != m.W_spatial[0].out_channels:
        _unsupported('RGA', 'the default down_ratio')
    return RGA(m.in_channels, m.spatial_size, m.inter_channel, m.inter_spatial, down)


def _ciau(m):
    return ChannelIAU(m.in_channels)


def _siau(m):
    return SpatialIAU(m.in_channels, m.num_parts, m.inter_channels)


PLAIN_BUILDERS: Dict[str, Callable[[nn.Module], nn.Module]] = {
    'SE': _se, 'ECA': _eca, 'GatherExcite': _ge, 'SRM': _srm, 'FcaNet': _fca, 'GSoP': _gsop,
    'SPA': _spa, 'CSE': _cse, 'SSE': _sse, 'SCSE': _scse, 'BAM': _bam, 'CBAM': _cbam,
    'CoordAttention': _coord, 'SGE': _sge, 'SimAM': _simam, 'TripletAttention': _triplet,
    'SelectiveKernel': _sk, 'ResidualAttention': _resatt, 'NonLocal': _nonlocal,
    'GlobalContext': _gc, 'DoubleAttention': _a2, 'DANetPAM': _pam, 'DANetCAM': _cam,
    'CrissCross': _cc, 'APNBlock': _apnb, 'AFNBlock': _afnb, 'ObjectContext': _ocr,
    'RGA': _rga, 'ChannelIAU': _ciau, 'SpatialIAU': _siau,
}

# our state-dict keys the plain module does not hold: APNB registers its shared key/query
# projection under both names
_DROP_PREFIXES = {'APNBlock': ('query_project.', )}


def build_plain(name: str, ours: nn.Module) -> nn.Module:
    """The plain counterpart of ``ours`` (a module registered as ``name``), with its weights.

    Raises ``KeyError`` for a module without a plain version and ``NotImplementedError`` for a
    configuration the plain version does not cover.
    """
    if name not in PLAIN_BUILDERS:
        raise KeyError(f'no plain version of {name}'
                       + (f': {NO_PLAIN[name]}' if name in NO_PLAIN else ''))
    plain = PLAIN_BUILDERS[name](ours)
    floats = [t for t in list(ours.parameters()) + list(ours.buffers()) if t.is_floating_point()]
    if floats:
        plain.to(dtype=floats[0].dtype, device=floats[0].device)
    state = {k: v for k, v in ours.state_dict().items()
             if not k.startswith(_DROP_PREFIXES.get(name, ()))}
    plain.load_state_dict(state, strict=True)
    return plain.train(ours.training)
