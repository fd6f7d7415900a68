"""The attention module of the Residual Attention Network.

Wang, Jiang, Qian, Yang, Li, Zhang, Wang, Tang. "Residual Attention Network for Image
Classification", CVPR 2017.
Authors' code: https://github.com/fwang91/residual-attention-network (Caffe,
``imagenet_model/Attention-56-deploy.prototxt``).

Not to be confused with the unrelated multi-label classification head that some libraries call
"ResidualAttention".
"""
import torch
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..utils import norm_forward, reduced_channels
from ._common import build_norm


class PreActBottleneck(nn.Module):
    """The authors' residual unit: a pre-activation bottleneck with an identity shortcut.

    ``x + conv1x1(BN-ReLU(conv3x3(BN-ReLU(conv1x1(BN-ReLU(x))))))``, convs without bias, the
    bottleneck a quarter of the width (64 for 256 channels in the prototxt).
    """

    def __init__(self, channels, mid_channels, norm_cfg, act_cfg):
        super().__init__()
        self.bn1 = build_norm(norm_cfg, channels)
        self.conv1 = nn.Conv2d(channels, mid_channels, 1, bias=False)
        self.bn2 = build_norm(norm_cfg, mid_channels)
        self.conv2 = nn.Conv2d(mid_channels, mid_channels, 3, padding=1, bias=False)
        self.bn3 = build_norm(norm_cfg, mid_channels)
        self.conv3 = nn.Conv2d(mid_channels, channels, 1, bias=False)
        self.act = build_activation_layer(act_cfg)

    def forward(self, x):
        out = self.conv1(self.act(norm_forward(self.bn1, x)))
        out = self.conv2(self.act(norm_forward(self.bn2, out)))
        out = self.conv3(self.act(norm_forward(self.bn3, out)))
        return x + out


@MODELS.register_module()
class ResidualAttention(BaseAttention):
    """Attention module of the Residual Attention Network: ``out = (1 + M(x)) * T(x)``.

    Following the authors' prototxt (Attention-56, ``AttentionA_1`` ... ``AttentionC_1``),
    every residual unit being a pre-activation bottleneck (:class:`PreActBottleneck`):

    - ``p`` units first (shared by both branches), then the trunk T: ``t`` units;
    - the soft mask branch from the same input: ``num_downsamples`` levels, each a 3x3/2
      max-pool then ``r`` units (``2r`` at the lowest level); every level but the lowest also
      feeds a one-unit skip connection. Going back up, each level is bilinearly upsampled to
      the size of the level above, added to that level's skip, and passed through ``r`` units;
      the top is upsampled to the input's size. Then BN-ReLU-1x1 conv-BN-ReLU-1x1 conv (no
      biases) -> sigmoid gives M;
    - ``(1 + M) * T`` (the prototxt's ``T * M + T``), then ``p`` more units.

    The authors use p=1, t=2, r=1 and a mask depth that brings the map down to 7x7 at a 224
    input: 3 levels at stride 4 (after ResNet's layer1), 2 at stride 8, 1 at stride 16.
    ``num_downsamples`` is 1 by default; the configs set it per stage.

    Any input size works, 1x1 included: the max-pools pad by 1 (kernel 3, stride 2), so an
    H-high map goes to ceil(H/2), never below 1. The Caffe pools are unpadded with ceil
    rounding: the same sizes for even H, one row more here for odd H, and no failure below
    3x3. Upsampling aligns corners, as Caffe's ``Interp`` layer does.

    Args:
        in_channels: C; the residual units keep it, their bottleneck is ``max(1, C // 4)``.
        num_downsamples: the mask branch's depth (number of max-pools), >= 1.
        p: residual units before the split and after the fusion; 1.
        t: trunk units; 2.
        r: units between adjacent pooling / upsampling steps; 1.
        align_corners: of the bilinear upsampling; True as in Caffe's ``Interp``.
        norm_cfg: every norm (BN).
        act_cfg: every activation (ReLU).
        init_cfg: mmengine init config.
    """

    _abbr_ = 'resatt'
    paper = 'Residual Attention Network for Image Classification (Wang et al., CVPR 2017)'
    code = 'https://github.com/fwang91/residual-attention-network'
    variants = {'levels2': dict(num_downsamples=2), 'levels3': dict(num_downsamples=3)}
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    placement = dict(stage_plugins=[
        dict(cfg=dict(type='mmattn.ResidualAttention', num_downsamples=n, p=1, t=2, r=1),
             stages=tuple(i == stage for i in range(4)))
        for stage, n in enumerate((3, 2, 1))])
    map_taps = ('mask_conv2', )
    maps_caption = 'the soft mask M (sigmoid), averaged over channels'

    def attention_maps(self, inputs, taps, query):
        from mmattn.visualization import AttentionMaps, first_image
        mask = torch.sigmoid(first_image(taps['mask_conv2'][-1].output))
        return AttentionMaps(spatial={'soft mask M, mean over channels': mask.mean(0)})

    def __init__(self, in_channels, *, num_downsamples=1, p=1, t=2, r=1, align_corners=True,
                 norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'), init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        if num_downsamples < 1 or min(p, t, r) < 0 or r < 1:
            raise ValueError(f'ResidualAttention: need num_downsamples >= 1, r >= 1 and '
                             f'p, t >= 0; got num_downsamples={num_downsamples}, p={p}, '
                             f't={t}, r={r}')
        self.num_downsamples = num_downsamples
        self.p, self.t, self.r = p, t, r
        self.align_corners = align_corners
        mid = reduced_channels(in_channels, 4, arg=None)  # the authors' bottleneck units

        def units(n):
            return nn.Sequential(*[
                PreActBottleneck(in_channels, mid, norm_cfg, act_cfg) for _ in range(n)])

        self.pre = units(p)
        self.trunk = units(t)
        self.down = nn.ModuleList([
            units(2 * r if level == num_downsamples - 1 else r)
            for level in range(num_downsamples)])
        self.skips = nn.ModuleList([units(1) for _ in range(num_downsamples - 1)])
        self.up = nn.ModuleList([units(r) for _ in range(num_downsamples - 1)])
        self.mask_bn1 = build_norm(norm_cfg, in_channels)
        self.mask_conv1 = nn.Conv2d(in_channels, in_channels, 1, bias=False)
        self.mask_bn2 = build_norm(norm_cfg, in_channels)
        self.mask_conv2 = nn.Conv2d(in_channels, in_channels, 1, bias=False)
        self.act = build_activation_layer(act_cfg)
        self.post = units(p)

    def _upsample(self, x, size):
        return F.interpolate(x, size=size, mode='bilinear', align_corners=self.align_corners)

    def soft_mask(self, x):
        """M(x) in (0, 1), the input's shape."""
        levels = []
        m = x
        for level, down in enumerate(self.down):
            m = down(F.max_pool2d(m, kernel_size=3, stride=2, padding=1))
            if level < self.num_downsamples - 1:
                levels.append(m)
        for level in reversed(range(self.num_downsamples - 1)):
            skip = self.skips[level](levels[level])
            m = self.up[level](self._upsample(m, skip.shape[2:]) + skip)
        m = self._upsample(m, x.shape[2:])
        m = self.mask_conv1(self.act(norm_forward(self.mask_bn1, m)))
        m = self.mask_conv2(self.act(norm_forward(self.mask_bn2, m)))
        return torch.sigmoid(m)

    def forward(self, x):
        self.check_input(x)
        x = self.pre(x)
        trunk = self.trunk(x)
        return self.post((1 + self.soft_mask(x)) * trunk)

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, num_downsamples={self.num_downsamples}, '
                f'p={self.p}, t={self.t}, r={self.r}')
