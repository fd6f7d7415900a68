"""Building blocks shared by the spatial and hybrid attention modules (not registered)."""
import torch
from mmcv.cnn import build_activation_layer, build_norm_layer
from torch import nn

from ..utils import norm_forward


def largest_divisor(channels: int, upper: int) -> int:
    """The largest divisor of ``channels`` that is at most ``upper``.

    Grouped layers (SGE's groups, SK's grouped convs) need the group count to divide the
    channel count. The authors' widths always do (multiples of 64); on other widths we keep as
    many groups as the width allows instead of failing, e.g. 48 channels with 32 groups asked
    run with 24 groups of 2 channels, and 3 channels with 64 groups asked run with 3 groups.
    """
    upper = max(1, min(int(upper), int(channels)))
    for g in range(upper, 0, -1):
        if channels % g == 0:
            return g
    return 1


def build_norm(norm_cfg: dict, channels: int) -> nn.Module:
    """A norm layer from an mmcv config, without mmcv's (name, layer) tuple."""
    return build_norm_layer(norm_cfg, channels)[1]


def zero_norm_(norm: nn.Module) -> None:
    """Set an affine norm's scale (and shift) to 0, as the authors' ResNet init does."""
    if getattr(norm, 'weight', None) is not None:
        nn.init.zeros_(norm.weight)
    if getattr(norm, 'bias', None) is not None:
        nn.init.zeros_(norm.bias)


# activations without an ``inplace`` argument (mmcv's ConvModule keeps the same list)
_NOT_INPLACE = ('Tanh', 'PReLU', 'Sigmoid', 'HSigmoid', 'Swish', 'GELU')


class ConvNormAct(nn.Module):
    """conv -> norm -> activation, with the norm run through :func:`norm_forward`.

    mmcv's ConvModule calls its norm directly, so a batch of one 1x1 map in training (one
    value per channel) would raise; this block normalises such a batch with the running
    statistics instead. ``act_cfg=None`` leaves the activation out.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=False, norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU')):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                              padding=padding, dilation=dilation, groups=groups, bias=bias)
        self.bn = build_norm(norm_cfg, out_channels)
        if act_cfg is not None and act_cfg['type'] not in _NOT_INPLACE:
            # in place, as mmcv's ConvModule: the norm's backward does not need its output,
            # and it saves a full-size allocation per block
            act_cfg = dict(act_cfg)
            act_cfg.setdefault('inplace', True)
        self.act = build_activation_layer(act_cfg) if act_cfg is not None else None

    def forward(self, x):
        x = norm_forward(self.bn, self.conv(x))
        return self.act(x) if self.act is not None else x


def sk_fuse_select(feats, fc_reduce: nn.Module, fc_select: nn.Module) -> torch.Tensor:
    """Selective kernel's fuse and select, on the outputs of its M branches (each (N, C, H, W)).

    Fuse: ``U = sum of the branches`` -> global average pool -> ``fc_reduce`` (C -> d).
    Select: ``fc_select`` (d -> M * C, branch m's logits in output channels
    ``[m * C, (m + 1) * C)``) -> softmax across the M branches per channel ->
    ``sum_m a_m * branch_m``. The branches stay separate tensors: stacking them copies M
    full-size maps.
    """
    u = feats[0]
    for f in feats[1:]:
        u = u + f
    z = fc_reduce(u.mean((2, 3), keepdim=True))
    n, c = u.shape[:2]
    weights = fc_select(z).reshape(n, len(feats), c, 1, 1).softmax(dim=1)
    out = feats[0] * weights[:, 0]
    for m in range(1, len(feats)):
        out = out + feats[m] * weights[:, m]
    return out


class ZPoolGate(nn.Module):
    """Z-pool over dim 1 -> k x k conv 2->1 (no bias) -> norm -> sigmoid -> rescale the input.

    Z-pool is ``cat[max, mean]`` over dim 1 with the max first, as in the authors' CBAM spatial
    gate and triplet attention's gates. The gate is applied to whichever axis the caller puts
    in dim 1 (channels for CBAM; H or W for triplet attention's rotated branches).
    """

    def __init__(self, kernel_size=7, norm_cfg=dict(type='BN', eps=1e-5, momentum=0.01)):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f'the gate kernel must be odd to keep the map size, got {kernel_size}')
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False)
        self.bn = build_norm(norm_cfg, 1)

    def forward(self, x):
        # max with indices, as the authors' torch.max(x, 1)[0]: its backward scatters the
        # gradient to the argmax, where amax's backward (which splits ties evenly) builds,
        # converts and reduces a full-size equality mask
        pooled = torch.cat([x.max(dim=1, keepdim=True)[0], x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(norm_forward(self.bn, self.conv(pooled)))
