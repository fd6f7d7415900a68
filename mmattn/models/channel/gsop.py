"""Global Second-order Pooling block (channel attention).

Gao, Xie, Wang, Li. "Global Second-order Pooling Convolutional Networks", CVPR 2019.
Authors' code: https://github.com/ZilinGao/Global-Second-order-Pooling-Convolutional-Networks
(``torchvision/models/resnet.py``: ``Bottleneck.chan_att``, the GSoP-Net1 default mode).
"""
import torch
from mmcv.cnn import build_activation_layer, build_norm_layer
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..utils import autocast_off, norm_forward


def covariance(feat: torch.Tensor) -> torch.Tensor:
    """(N, d, h, w) -> (N, d, d) covariance over positions, divided by h*w (the authors').

    The authors compute ``X I_hat X^T`` with ``I_hat = (I - 11^T / M) / M``; centring first is
    the same matrix at O(d^2 M) instead of O(d M^2). It is computed in at least float32: a
    half-precision sum of thousands of products loses the small entries.
    """
    dtype = feat.dtype
    with autocast_off(feat.device.type):
        f = feat.flatten(2)
        f = f.to(torch.promote_types(f.dtype, torch.float32))
        f = f - f.mean(-1, keepdim=True)
        # bmm, not matmul: matmul's batched path holds extra full-size copies in training
        cov = torch.bmm(f, f.transpose(1, 2)) / f.shape[-1]
    return cov.to(dtype)


@MODELS.register_module()
class GSoP(BaseAttention):
    """GSoP channel attention: second-order statistics of the input gate its channels.

    ReLU -> 1x1 conv C->d (bias) -> BN -> ReLU -> d x d covariance over positions -> BN (one
    channel per row) -> row-wise conv, Conv2d(d, 4d, kernel (d, 1), groups=d, bias) -> 1x1 conv
    4d->C (bias) -> sigmoid -> x * g. The first ReLU does not modify the input in place.

    The authors put it in the last block of each ResNet stage only (a plain mmdet ResNet
    cannot say that; ``mmattn.AttnResNet`` takes ``blocks='last'`` per plugin), and give the
    first stage's 1x1 conv stride 2 (``dr_stride=2`` when the block has 64 planes) to sample
    the covariance on a quarter of the positions.

    Args:
        in_channels: C.
        att_dim: d (128).
        dr_stride: stride of the reducing 1x1 conv (1; the authors use 2 in stage 1).
        norm_cfg: the two BNs.
        act_cfg: the two ReLUs.
        gate_cfg: the gate's activation (sigmoid).
        init_cfg: mmengine init config.
    """

    _abbr_ = 'gsop'
    paper = 'Global Second-order Pooling Convolutional Networks (Gao et al., CVPR 2019)'
    code = 'https://github.com/ZilinGao/Global-Second-order-Pooling-Convolutional-Networks'
    variants = {'stride2': dict(dr_stride=2)}
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    placement = dict(plugins=[
        dict(cfg=dict(type='mmattn.GSoP', att_dim=128, dr_stride=2),
             stages=(True, False, False, False), position='after_conv3', blocks='last'),
        dict(cfg=dict(type='mmattn.GSoP', att_dim=128, dr_stride=1),
             stages=(False, True, True, True), position='after_conv3', blocks='last')])
    channel_gates = {'channel gate': 'gate'}
    maps_caption = 'channel weights: the output of the gate (sigmoid), one per channel'

    def __init__(self, in_channels, *, att_dim=128, dr_stride=1, norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU'), gate_cfg=dict(type='Sigmoid'), init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        self.att_dim = att_dim
        self.dr_stride = dr_stride
        self.act = build_activation_layer(act_cfg)
        self.dr_conv = nn.Conv2d(in_channels, att_dim, 1, stride=dr_stride, bias=True)
        self.dr_norm = build_norm_layer(norm_cfg, att_dim)[1]
        self.row_norm = build_norm_layer(norm_cfg, att_dim)[1]
        # row-wise conv: row i of the covariance (channel i, a d x 1 column) -> 4 outputs
        self.row_conv = nn.Conv2d(att_dim, 4 * att_dim, (att_dim, 1), groups=att_dim,
                                  bias=True)
        self.fc = nn.Conv2d(4 * att_dim, in_channels, 1, bias=True)
        self.gate = build_activation_layer(gate_cfg)

    def forward(self, x):
        self.check_input(x)
        # the input is also the product's operand: an in-place activation would change it
        y = self.act(x.clone() if getattr(self.act, 'inplace', False) else x)
        y = self.act(norm_forward(self.dr_norm, self.dr_conv(y)))
        cov = covariance(y).unsqueeze(-1)  # (N, d, d, 1): row i is channel i for the BN
        z = self.row_conv(norm_forward(self.row_norm, cov))  # (N, 4d, 1, 1)
        return x * self.gate(self.fc(z))

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, att_dim={self.att_dim}, '
                f'dr_stride={self.dr_stride}')
