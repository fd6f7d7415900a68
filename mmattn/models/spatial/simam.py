"""SimAM, a parameter-free attention module.

Yang, Zhang, Li, Xie. "SimAM: A Simple, Parameter-Free Attention Module for Convolutional Neural
Networks", ICML 2021.
Authors' code: https://github.com/ZjjConan/SimAM (``networks/attentions/simam_module.py``).
"""
import torch

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..layers import cpu_kernels, use_fast_path


@MODELS.register_module()
class SimAM(BaseAttention):
    """SimAM: ``out = x * sigmoid(d / (4 * (sum(d) / n + lambda)) + 0.5)``.

    ``d = (x - mean)^2`` per channel, the mean and the sum taken over the H x W positions, and
    ``n = H * W - 1``. No parameters.

    At 1x1, ``n`` would be 0 and the authors' code returns NaN (0 / 0). Here ``n`` is clamped
    to 1: the single position equals its mean, so ``d = 0``, ``y = 0.5`` and the output is
    ``x * sigmoid(0.5)`` -- the value any position equal to its channel's mean gets at other
    sizes. Gradients stay finite.

    On the CPU, from :data:`~mmattn.models.layers.cpu_kernels.SIMAM_MIN_ELEMENTS` elements, the
    formula runs as two kernels compiled by ``torch.compile`` on the first call
    (:func:`~mmattn.models.layers.cpu_kernels.simam`); double backward needs the fast paths
    off (``mmattn.models.layers.fast_paths(False)``).

    The authors' ResNets (``networks/imagenet/resnet.py``) run it between each block's 3x3
    conv and ``bn2`` (``conv2 = nn.Sequential(conv2, simam_module(width))``): in a backbone's
    conv slot, ``conv2_cfg=dict(type='mmattn.AttnConv2d', attention=dict(type='mmattn.SimAM',
    e_lambda=0.1))``. As a plugin it runs on features after their norm, e.g. at
    ``position='after_conv2'`` (after conv2 + bn2 + ReLU).

    Args:
        in_channels: C (unused by the formula; kept for the plugin interface and input checks).
        e_lambda: lambda; 1e-4 is the module's default in the authors' code and paper (their
            ImageNet ResNet-50 and COCO detectors were trained with 0.1, see
            ``configs/faster_rcnn_simam_r50_coco.py``).
        init_cfg: mmengine init config.
    """

    _abbr_ = 'simam'
    paper = ('SimAM: A Simple, Parameter-Free Attention Module for Convolutional Neural '
             'Networks (Yang et al., ICML 2021)')
    code = 'https://github.com/ZjjConan/SimAM'
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    # the authors' SimAM follows the 3x3 conv, before bn2: the conv slot's AttnConv2d
    placement = dict(conv2_cfg=dict(type='mmattn.AttnConv2d',
                                    attention=dict(type='mmattn.SimAM')))
    maps_caption = ('the energy gate sigmoid(d / (4 (var + lambda)) + 0.5), averaged over '
                    'channels')

    def attention_maps(self, inputs, taps, query):
        from mmattn.visualization import AttentionMaps, first_image
        # parameter-free: the gate is recomputed from the input
        x = inputs[0]
        n = max(x.shape[2] * x.shape[3] - 1, 1)
        d = (x - x.mean(dim=(2, 3), keepdim=True)).pow(2)
        gate = torch.sigmoid(d / (4 * (d.sum(dim=(2, 3), keepdim=True) / n + self.e_lambda))
                             + 0.5)
        return AttentionMaps(spatial={'gate, mean over channels': first_image(gate).mean(0)})

    def __init__(self, in_channels, *, e_lambda=1e-4, init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        if e_lambda <= 0:
            raise ValueError(f'SimAM: e_lambda must be positive, got {e_lambda}')
        self.e_lambda = float(e_lambda)

    def forward(self, x):
        self.check_input(x)
        if use_fast_path(x) and x.numel() >= cpu_kernels.SIMAM_MIN_ELEMENTS:
            return cpu_kernels.simam(x, self.e_lambda)
        n = max(x.shape[2] * x.shape[3] - 1, 1)
        d = (x - x.mean(dim=(2, 3), keepdim=True)).pow(2)
        y = d / (4 * (d.sum(dim=(2, 3), keepdim=True) / n + self.e_lambda)) + 0.5
        return x * torch.sigmoid(y)

    def extra_repr(self):
        return f'in_channels={self.in_channels}, e_lambda={self.e_lambda}'
