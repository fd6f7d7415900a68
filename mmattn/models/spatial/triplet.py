"""Triplet attention.

Misra, Nalamada, Arasanipalai, Hou. "Rotate to Attend: Convolutional Triplet Attention Module",
WACV 2021.
Authors' code: https://github.com/landskape-ai/triplet-attention (``MODELS/triplet_attention.py``
used by their ``MODELS/resnet.py``, whose init zeroes the hw branch's BN weight; the root
``triplet_attention.py`` is the same module with the branches renamed cw / hc / hw).
"""
from mmattn.registry import MODELS
from ..base import BaseAttention
from ._common import ZPoolGate, zero_norm_


@MODELS.register_module()
class TripletAttention(BaseAttention):
    """Triplet attention: three Z-pool gates over the three pairs of axes, averaged.

    Each gate: ``cat[max, mean]`` over one axis -> 7x7 conv 2->1 (no bias) -> BN (eps 1e-5,
    momentum 0.01) -> sigmoid -> rescale. As in the authors' forward:

    - ``cw``: x permuted to (N, H, C, W), gated over H (a gate on the C x W plane), permuted
      back;
    - ``hc``: x permuted to (N, W, H, C), gated over W (a gate on the H x C plane), permuted
      back;
    - ``hw``: x itself, gated over C (a CBAM-style spatial gate on H x W);

    and ``out = 1/3 * (hw + cw + hc)``, the plain mean; ``no_spatial=True`` drops the hw branch
    and takes ``1/2 * (cw + hc)``.

    The authors' ResNet init sets the hw branch's BN weight to 0 (their ``SpatialGate``
    keys); :meth:`reset_authors_init` does it here, so that branch starts as x * 0.5.

    Args:
        in_channels: C (the gates have no per-channel parameters; kept for the plugin interface).
        kernel_size: the gates' kernel (odd), 7.
        no_spatial: drop the hw branch (the authors' flag).
        norm_cfg: the gates' norm (BN, eps 1e-5, momentum 0.01 in the authors' code).
        init_cfg: mmengine init config.
    """

    _abbr_ = 'triplet'
    paper = 'Rotate to Attend: Convolutional Triplet Attention Module (Misra et al., WACV 2021)'
    code = 'https://github.com/landskape-ai/triplet-attention'
    variants = {'no_spatial': dict(no_spatial=True)}
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    placement = dict(
        plugins=[dict(cfg=dict(type='mmattn.TripletAttention'), position='after_conv3')])
    map_taps = ('cw.conv', 'hc.conv', 'hw.conv')
    maps_caption = ("the hw branch's spatial gate; the gate of all three branches per "
                    'position, averaged over channels')

    def attention_maps(self, inputs, taps, query):
        import torch

        from mmattn.models.utils import norm_forward
        from mmattn.visualization import AttentionMaps, first_image

        def gate(branch, path):
            """sigmoid(norm(conv(z-pool))) of a branch, from its recorded conv output."""
            conv = taps[path][-1].output
            return first_image(torch.sigmoid(norm_forward(branch.bn, conv)))[0]

        g_cw = gate(self.cw, 'cw.conv')  # (C, W): gates x[c, :, w]
        g_hc = gate(self.hc, 'hc.conv')  # (H, C): gates x[c, h, :]
        total = g_cw.mean(0)[None, :] + g_hc.mean(1)[:, None]
        maps = AttentionMaps()
        if self.hw is not None:
            g_hw = gate(self.hw, 'hw.conv')  # (H, W)
            maps.spatial['hw gate'] = g_hw
            total = total + g_hw
        # out = mean of the branches' x * gate: x times the mean gate, element by element
        maps.spatial['mean gate of the branches, mean over channels'] = total / (
            3 if self.hw is not None else 2)
        return maps

    def __init__(self, in_channels, *, kernel_size=7, no_spatial=False,
                 norm_cfg=dict(type='BN', eps=1e-5, momentum=0.01), init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        self.no_spatial = no_spatial
        self.cw = ZPoolGate(kernel_size, norm_cfg)
        self.hc = ZPoolGate(kernel_size, norm_cfg)
        self.hw = None if no_spatial else ZPoolGate(kernel_size, norm_cfg)
        self.reset_authors_init()

    def reset_authors_init(self):
        if self.hw is not None:
            zero_norm_(self.hw.bn)

    def forward(self, x):
        self.check_input(x)
        out_cw = self.cw(x.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)
        out_hc = self.hc(x.permute(0, 3, 2, 1)).permute(0, 3, 2, 1)
        if self.hw is None:
            return 1 / 2 * (out_cw + out_hc)
        return 1 / 3 * (self.hw(x) + out_cw + out_hc)

    def extra_repr(self):
        return f'in_channels={self.in_channels}, no_spatial={self.no_spatial}'
