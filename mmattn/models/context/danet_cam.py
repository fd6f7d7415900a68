"""DANet's channel attention module (CAM).

Fu, Liu, Tian, Li, Bao, Fang, Lu. "Dual Attention Network for Scene Segmentation", CVPR 2019.
Authors' code: https://github.com/junfu1115/DANet (``encoding/nn/da_att.py::CAM_Module``).
"""
import torch
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..layers import cpu_kernels, use_fast_path
from ..utils import autocast_off


@MODELS.register_module()
class DANetCAM(BaseAttention):
    """CAM: energy = X X^T (C x C over the H*W positions); attention =
    softmax(rowmax(energy) - energy) over the last axis; out = gamma * (attention X) + x.

    No convolutions; gamma is a learnable scalar starting at 0. The ``rowmax - energy`` step is
    the authors' code (channels that are *less* similar get more weight; the softmax is
    invariant to the row maximum, so this is softmax(-energy)).

    The C x C energy sums H*W products and overflows float16 on real feature maps (H*W = 4096
    values of magnitude 4 already exceed 65504), so it is formed in float32 under autocast.

    On the CPU the energy is :func:`~mmattn.models.layers.cpu_kernels.gram` and the softmax
    :func:`~mmattn.models.layers.cpu_kernels.flushed_softmax`: on real feature maps most of
    these probabilities underflow, many to subnormal floats, which the CPU multiplies slowly.

    Args:
        in_channels: C.
        init_cfg: mmengine init config.
    """

    _abbr_ = 'cam'
    paper = 'Dual Attention Network for Scene Segmentation (Fu et al., CVPR 2019)'
    code = 'https://github.com/junfu1115/DANet'
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    placement = dict(plugins=[
        dict(cfg=dict(type='mmattn.DANetCAM'), stages=(False, False, False, True),
             blocks='last', position='after_block')])
    no_maps = ('its attention is a C x C matrix between channels (softmax of -X X^T): it has '
               'no weight per position and no weight per channel to draw')

    def __init__(self, in_channels, *, init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.reset_authors_init()

    def reset_authors_init(self):
        with torch.no_grad():
            self.gamma.zero_()

    def forward(self, x):
        self.check_input(x)
        n, c, h, w = x.shape
        with autocast_off(x.device.type):
            feats = x.flatten(2)
            if feats.dtype in (torch.float16, torch.bfloat16):
                feats = feats.float()
            fast = use_fast_path(x)
            # bmm, not matmul: over a training step matmul's batched path holds two more
            # feature-map-sized tensors
            energy = cpu_kernels.gram(feats) if fast else torch.bmm(feats, feats.transpose(1, 2))
            energy_new = energy.max(dim=-1, keepdim=True)[0].expand_as(energy) - energy
            attention = (cpu_kernels.flushed_softmax(energy_new, dim=-1) if fast
                         else energy_new.softmax(dim=-1))
            out = torch.bmm(attention, feats).reshape(n, c, h, w)
        return self.gamma * out.to(x.dtype) + x
