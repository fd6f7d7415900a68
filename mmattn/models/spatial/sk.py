"""Selective kernel convolution.

Li, Wang, Hu, Yang. "Selective Kernel Networks", CVPR 2019.
Authors' code: https://github.com/implus/SKNet (Caffe, ``models/sknet50.prototxt``).
"""
from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..utils import reduced_channels
from ._common import ConvNormAct, largest_divisor, sk_fuse_select


@MODELS.register_module()
class SelectiveKernel(BaseAttention):
    """SK unit: M dilated grouped 3x3 branches, mixed per channel by a softmax across branches.

    Split: branch m (m = 1..M) is a 3x3 conv with dilation m (padding m, groups 32, no bias)
    + BN + ReLU. Fuse: ``U = sum of the branches`` -> GAP -> 1x1 conv C->d (no bias) + BN +
    ReLU, ``d = max(C // 16, 32)``. Select: M 1x1 convs d->C (no bias) give M logits per
    channel; a softmax across the M branches weights them: ``out = sum_m a_m * branch_m``.

    The M select convs are stored as one conv d->M*C (``fc_select``), output channels
    ``[m*C, (m+1)*C)`` belonging to branch m, as the authors' prototxt does (``B_fc2`` with
    M*C outputs reshaped to (M, C)).

    In SKNet the unit replaces the 3x3 conv of a ResNeXt bottleneck (and may stride):
    :class:`~mmattn.models.spatial.sk_conv.SKConv` is that form, for a backbone's conv slot
    (``conv2_cfg=dict(type='mmattn.SKConv')``). As a plugin this one runs at stride 1 on the
    features it is given, C channels in and out, e.g. after conv2 + bn2 + ReLU::

        plugins=[dict(cfg=dict(type='mmattn.SelectiveKernel'), position='after_conv2')]

    The authors' prototxt initialises the two fuse/select convs from a Gaussian with std 0.01
    (the others are MSRA); :meth:`reset_authors_init` restores that after a backbone's init.

    Channel counts not divisible by ``groups``: the branches use the largest divisor of C not
    above ``groups`` (``self.groups``), e.g. 48 channels run with 24 groups.

    Args:
        in_channels: C.
        num_branches: M; 2 in SKNet-50 (3 is the paper's other setting).
        groups: the branches' conv groups; 32.
        reduction: r in ``d = max(C // r, L)``; 16.
        min_channels: L; 32.
        norm_cfg: the branches' and the fuse layer's norm (BN).
        act_cfg: their activation (ReLU).
        init_cfg: mmengine init config.
    """

    _abbr_ = 'sk'
    paper = 'Selective Kernel Networks (Li et al., CVPR 2019)'
    code = 'https://github.com/implus/SKNet'
    variants = {'M3': dict(num_branches=3)}
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    no_placement = ('the plugin form, after conv2 + bn2 + ReLU at stride 1; its authors '
                    'replace the 3x3 conv with the SK unit, which mmattn.SKConv does in a '
                    'backbone\'s conv slot (its placement: SKNet-50)')
    map_taps = ('fc_select', )
    maps_caption = ('per channel, the softmax weight of each branch (branch m has '
                    'dilation m)')

    def attention_maps(self, inputs, taps, query):
        from mmattn.visualization import AttentionMaps, first_image
        logits = first_image(taps['fc_select'][-1].output)
        weights = logits.reshape(self.num_branches, self.in_channels).softmax(dim=0)
        return AttentionMaps(channel={f'branch {i + 1} (dilation {i + 1}) weight': weights[i]
                                      for i in range(self.num_branches)})

    def __init__(self, in_channels, *, num_branches=2, groups=32, reduction=16, min_channels=32,
                 norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'), init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        if num_branches < 1:
            raise ValueError(f'SelectiveKernel: num_branches must be >= 1, got {num_branches}')
        self.num_branches = num_branches
        self.groups = largest_divisor(in_channels, groups)
        self.attn_channels = reduced_channels(in_channels, reduction, min_channels=min_channels)
        self.branches = nn.ModuleList([
            ConvNormAct(in_channels, in_channels, 3, padding=d, dilation=d, groups=self.groups,
                        norm_cfg=norm_cfg, act_cfg=act_cfg)
            for d in range(1, num_branches + 1)
        ])
        self.fc_reduce = ConvNormAct(in_channels, self.attn_channels, 1, norm_cfg=norm_cfg,
                                     act_cfg=act_cfg)
        self.fc_select = nn.Conv2d(self.attn_channels, num_branches * in_channels, 1,
                                   bias=False)
        self.reset_authors_init()

    def reset_authors_init(self):
        nn.init.normal_(self.fc_reduce.conv.weight, std=0.01)
        nn.init.normal_(self.fc_select.weight, std=0.01)

    def forward(self, x):
        self.check_input(x)
        feats = [branch(x) for branch in self.branches]
        return sk_fuse_select(feats, self.fc_reduce, self.fc_select)

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, num_branches={self.num_branches}, '
                f'groups={self.groups}, attn_channels={self.attn_channels}')
