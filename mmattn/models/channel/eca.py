"""Efficient Channel Attention.

Wang, Wu, Zhu, Li, Zuo, Hu. "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural
Networks", CVPR 2020.
Authors' code: https://github.com/BangguWu/ECANet (``models/eca_module.py::eca_layer``).
"""
import math

from mmcv.cnn import build_activation_layer
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention


def eca_kernel_size(channels: int, gamma: float = 2, b: float = 1) -> int:
    """The paper's adaptive kernel size: t = int(|log2(C) + b| / gamma), made odd upwards."""
    t = int(abs(math.log2(channels) + b) / gamma)
    return t if t % 2 else t + 1


@MODELS.register_module()
class ECA(BaseAttention):
    """ECA: GAP -> Conv1d(1, 1, k, no bias) across channels -> sigmoid -> x * g.

    The 1-D convolution slides over the channel axis of the pooled vector with zero padding
    (k - 1) / 2, so each channel's gate sees its k neighbouring channels.

    Args:
        in_channels: C.
        kernel_size: k, odd. ``None`` (default) picks the paper's adaptive size from C with
            ``gamma`` and ``b``: 1 for C < 8, 3 for C = 8..127, 5 for C = 128..2047, 7 for
            C = 2048..32767 (so 5, 5, 5, 7 in ResNet-50's stages). The authors' released
            ImageNet R50 weights were trained with k = 3, 5, 5, 7 per stage; pass
            ``kernel_size`` per stage to rebuild those.
        gamma, b: the adaptive rule's constants (2 and 1 in the paper).
        gate_cfg: the gate's activation (sigmoid).
        init_cfg: mmengine init config.
    """

    _abbr_ = 'eca'
    paper = ('ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks '
             '(Wang et al., CVPR 2020)')
    code = 'https://github.com/BangguWu/ECANet'
    variants = {'k3': dict(kernel_size=3)}
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    placement = dict(plugins=[
        dict(cfg=dict(type='mmattn.ECA'), stages=(True, True, True, True),
             position='after_conv3')])
    channel_gates = {'channel gate': 'gate'}
    maps_caption = 'channel weights: the output of the gate (sigmoid), one per channel'

    def __init__(self, in_channels, *, kernel_size=None, gamma=2, b=1,
                 gate_cfg=dict(type='Sigmoid'), init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        if kernel_size is None:
            kernel_size = eca_kernel_size(in_channels, gamma, b)
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            # an even kernel with (k - 1) / 2 padding would drop a channel from the output
            raise ValueError(f'ECA: kernel_size must be a positive odd int, got {kernel_size!r}')
        self.kernel_size = kernel_size
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False)
        self.gate = build_activation_layer(gate_cfg)

    def forward(self, x):
        self.check_input(x)
        y = x.mean((2, 3), keepdim=True)  # (N, C, 1, 1)
        # (N, C, 1) -> (N, 1, C): the channel axis becomes the conv's length axis
        y = self.conv(y.squeeze(-1).transpose(-1, -2)).transpose(-1, -2).unsqueeze(-1)
        return x * self.gate(y)

    def extra_repr(self):
        return f'in_channels={self.in_channels}, kernel_size={self.kernel_size}'
