"""Style-based Recalibration Module.

Lee, Kim, Nam. "SRM: A Style-based Recalibration Module for Convolutional Neural Networks",
ICCV 2019.
Authors' code: https://github.com/hyunjaelee410/style-based-recalibration-module
(``models/recalibration_modules.py::SRMLayer``).
"""
import torch
from mmcv.cnn import build_activation_layer, build_norm_layer
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..utils import norm_forward


@MODELS.register_module()
class SRM(BaseAttention):
    """SRM: style pooling (mean, std) -> channel-wise FC -> BN -> sigmoid -> x * g.

    Style pooling gives each channel its mean and its standard deviation
    ``sqrt(unbiased var + eps)`` over positions; the channel-wise FC mixes the two with a
    per-channel weight pair, ``z_c = cfc[c, 0] * mean_c + cfc[c, 1] * std_c`` (no bias).

    ``cfc`` starts at 0, as in the authors' layer. The authors train ``cfc`` and the BN's
    weight and bias without weight decay (they tag them ``srm_param`` and give them their own
    optimizer group). With mmengine, a config does it by name, the plugin being ``srm``
    inside each block::

        optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'.srm.': dict(decay_mult=0.)}))

    On a 1x1 map the unbiased variance is undefined (0/0, NaN in the authors' layer); it is
    taken as 0 there, so the std is ``sqrt(eps)``.

    Args:
        in_channels: C.
        eps: added to the variance before the square root (1e-5).
        norm_cfg: the norm after the channel-wise FC (BN).
        gate_cfg: the gate's activation (sigmoid).
        init_cfg: mmengine init config.
    """

    _abbr_ = 'srm'
    paper = ('SRM: A Style-based Recalibration Module for Convolutional Neural Networks '
             '(Lee et al., ICCV 2019)')
    code = 'https://github.com/hyunjaelee410/style-based-recalibration-module'
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    placement = dict(plugins=[dict(cfg=dict(type='mmattn.SRM'), position='after_conv3')])
    channel_gates = {'channel gate': 'gate'}
    maps_caption = 'channel weights: the output of the gate (sigmoid), one per channel'

    def __init__(self, in_channels, *, eps=1e-5, norm_cfg=dict(type='BN'),
                 gate_cfg=dict(type='Sigmoid'), init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        self.eps = eps
        self.cfc = nn.Parameter(torch.zeros(in_channels, 2))
        # named bn as in the authors' layer, so their state dicts map onto it
        self.bn = build_norm_layer(norm_cfg, in_channels)[1]
        self.gate = build_activation_layer(gate_cfg)
        self.reset_authors_init()

    def reset_authors_init(self):
        with torch.no_grad():
            self.cfc.zero_()

    def forward(self, x):
        self.check_input(x)
        n = x.shape[2] * x.shape[3]
        var, mean = torch.var_mean(x, dim=(2, 3), correction=1 if n > 1 else 0, keepdim=True)
        std = (var + self.eps).sqrt()
        # the authors' channel-wise FC, (N, C, 2) * cfc summed over the pair: its backward
        # is 5 kernels fewer than weighting the two statistics one by one
        style = torch.cat([mean, std], dim=2)  # (N, C, 2, 1)
        z = (style * self.cfc[None, :, :, None]).sum(dim=2, keepdim=True)
        g = self.gate(norm_forward(self.bn, z))
        return x * g

    def extra_repr(self):
        return f'in_channels={self.in_channels}, eps={self.eps}'
