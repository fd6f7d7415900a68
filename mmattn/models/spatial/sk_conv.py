"""Selective kernel convolution: the SK unit as the 3x3 conv it replaces.

Li, Wang, Hu, Yang. "Selective Kernel Networks", CVPR 2019.
Authors' code: https://github.com/implus/SKNet (Caffe, ``models/sknet50.prototxt``); timm's
``SelectiveKernel`` (``timm/layers/selective_kernel.py``, ``skresnext50_32x4d``,
``skresnet18``/``34``) and implus/PytorchInsight's SK-ResNet (``resnet_sk.py``) are its
PyTorch forms.
"""
from typing import Optional, Sequence

from torch import nn

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..utils import reduced_channels
from ._common import ConvNormAct, sk_fuse_select


def _per_branch(name, values, num_branches):
    values = tuple(values)
    if len(values) != num_branches or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise ValueError(f'SKConv: {name} must be {num_branches} positive ints (one per '
                         f'branch), got {values!r}')
    return values


@MODELS.register_module()
class SKConv(BaseAttention):
    """The SK unit in place of a 3x3 conv: split, fuse, select.

    - Split: M branches, branch m a 3x3 conv with dilation ``dilation * branch_dilations[m]``
      (the authors': 1, 2, ..., M; padding equal to it), the unit's stride and groups, no bias,
      each followed by a norm and an activation (BN, ReLU).
    - Fuse: ``U = sum of the branches``, global average pool, 1x1 conv ``C -> d`` (no bias) +
      norm + activation, ``d = max(C // r, L)`` (``C``: out_channels).
    - Select: M 1x1 convs ``d -> C`` (no bias), softmax across the M branches per channel:
      ``out = sum_m a_m * branch_m``.

    Its output is normalised and activated already (each branch ends with its norm and
    activation; softmax weights are positive): in a ResNet block it stands for the conv *and*
    the norm and activation after it, so a backbone's conv slot leaves those out
    (``includes_norm_act``), as the authors' network has no BN after the unit.

    The M select convs are stored as one conv ``d -> M * C`` (``fc_select``), output channels
    ``[m * C, (m + 1) * C)`` belonging to branch m, as the prototxt's ``B_fc2`` reshaped to
    (M, C) and timm's ``fc_select``.

    The published forms:

    - SKNet-50 (the authors', a ResNeXt-50 32x4d whose grouped 3x3 convs are SK units; timm
      ``skresnext50_32x4d``): the defaults, with the block's 32 groups (M=2, r=16, L=32).
    - timm ``skresnet18``/``skresnet34`` (the first 3x3 conv of each BasicBlock):
      ``split_input=True, reduction=8, min_channels=16``. timm rounds ``d`` to a multiple of
      16 (32 for skresnext50_32x4d); for every width of the released networks that is
      ``max(C // r, L)``.
    - implus/PytorchInsight's SK-ResNet* (conv2 of each ResNet bottleneck): two 3x3 branches
      without dilation, one dense and one with 32 groups, ``d = C // 16``:
      ``branch_dilations=(1, 1), branch_groups=(1, 32), min_channels=1``.

    The authors' prototxt initialises the fuse and select convs from a Gaussian with std 0.01
    (the branch convs are MSRA, as a backbone's Kaiming init does);
    :meth:`reset_authors_init` restores that after a backbone's init.

    Args:
        in_channels: input width.
        out_channels: C (default: ``in_channels``).
        kernel_size: 3 (larger kernels are the dilated branches, as the authors have them).
        stride: every branch's stride.
        padding: must be ``dilation`` (every branch keeps the size at stride 1); ``None``: so.
        dilation: the unit's dilation; branch m dilates ``dilation * branch_dilations[m]``.
        groups: every branch's groups (a ResNeXt block gives its cardinality, the authors' G).
        bias: must be False (a norm follows every conv).
        num_branches: M; 2 in SKNet (3 is the paper's other setting).
        reduction: r in ``d = max(C // r, L)``; 16.
        min_channels: L; 32.
        split_input: timm's variant: branch m sees input channels ``[m * in / M, (m + 1) * in
            / M)`` only.
        branch_dilations: the branches' dilation factors, one per branch (default
            ``(1, ..., M)``); sets M when given.
        branch_groups: the branches' groups, one per branch, in place of ``groups``.
        norm_cfg: the branches' and the fuse layer's norm.
        act_cfg: their activation.
        init_cfg: mmengine init config.
    """

    _abbr_ = 'sk_conv'
    paper = 'Selective Kernel Networks (Li et al., CVPR 2019)'
    code = 'https://github.com/implus/SKNet'
    is_plugin = False
    includes_norm_act = True
    variants = {'M3': dict(num_branches=3)}
    # SKNet-50: a ResNeXt-50 32x4d whose 3x3 convs are SK units (the classifier builds
    # AttnResNeXt for groups and base_width)
    placement = dict(groups=32, base_width=4, conv2_cfg=dict(type='mmattn.SKConv'))
    map_taps = ('fc_select', )
    maps_caption = ('per channel, the softmax weight of each branch (branch m has '
                    'dilation m)')

    def __init__(self, in_channels: int, *, out_channels: Optional[int] = None,
                 kernel_size: int = 3, stride: int = 1, padding: Optional[int] = None,
                 dilation: int = 1, groups: int = 1, bias: bool = False,
                 num_branches: int = 2, reduction: float = 16, min_channels: int = 32,
                 split_input: bool = False, branch_dilations: Optional[Sequence[int]] = None,
                 branch_groups: Optional[Sequence[int]] = None,
                 norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'), init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        out_channels = in_channels if out_channels is None else out_channels
        for name, value in (('out_channels', out_channels), ('stride', stride),
                            ('dilation', dilation), ('groups', groups),
                            ('num_branches', num_branches)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'SKConv: {name} must be a positive int, got {value!r}')
        if kernel_size not in (3, (3, 3)):
            raise ValueError(f'SKConv: kernel_size must be 3 (its larger kernels are dilated '
                             f'3x3 branches), got {kernel_size!r}')
        if padding is not None and padding not in (dilation, (dilation, dilation)):
            raise ValueError(f'SKConv: padding must equal dilation ({dilation}), each branch '
                             f'padding by its own dilation; got {padding!r}')
        if bias:
            raise ValueError('SKConv: bias must be False (a norm follows every conv)')
        if branch_dilations is not None:
            num_branches = len(tuple(branch_dilations))
        branch_dilations = _per_branch(
            'branch_dilations', range(1, num_branches + 1)
            if branch_dilations is None else branch_dilations, num_branches)
        branch_groups = _per_branch('branch_groups', (groups, ) * num_branches
                                    if branch_groups is None else branch_groups,
                                    num_branches)
        branch_in = in_channels
        if split_input:
            if in_channels % num_branches:
                raise ValueError(f'SKConv: split_input needs in_channels ({in_channels}) '
                                 f'divisible by the {num_branches} branches')
            branch_in = in_channels // num_branches
        for g in branch_groups:
            if branch_in % g or out_channels % g:
                raise ValueError(f'SKConv: groups {g} must divide the branch input width '
                                 f'({branch_in}) and out_channels ({out_channels})')
        self.out_channels = out_channels
        self.stride = stride
        self.dilation = dilation
        self.num_branches = num_branches
        self.split_input = bool(split_input)
        self.branch_dilations = branch_dilations
        self.branch_groups = branch_groups
        self.attn_channels = reduced_channels(out_channels, reduction,
                                              min_channels=min_channels)
        self.branches = nn.ModuleList([
            ConvNormAct(branch_in, out_channels, 3, stride=stride, padding=dilation * d,
                        dilation=dilation * d, groups=g, norm_cfg=norm_cfg, act_cfg=act_cfg)
            for d, g in zip(branch_dilations, branch_groups)
        ])
        self.fc_reduce = ConvNormAct(out_channels, self.attn_channels, 1, norm_cfg=norm_cfg,
                                     act_cfg=act_cfg)
        self.fc_select = nn.Conv2d(self.attn_channels, num_branches * out_channels, 1,
                                   bias=False)
        self.reset_authors_init()

    def reset_authors_init(self):
        nn.init.normal_(self.fc_reduce.conv.weight, std=0.01)
        nn.init.normal_(self.fc_select.weight, std=0.01)

    def forward(self, x):
        self.check_input(x)
        if self.split_input:
            parts = x.split(self.in_channels // self.num_branches, dim=1)
            feats = [branch(p) for branch, p in zip(self.branches, parts)]
        else:
            feats = [branch(x) for branch in self.branches]
        return sk_fuse_select(feats, self.fc_reduce, self.fc_select)

    def attention_maps(self, inputs, taps, query):
        from mmattn.visualization import AttentionMaps, first_image
        logits = first_image(taps['fc_select'][-1].output)
        weights = logits.reshape(self.num_branches, self.out_channels).softmax(dim=0)
        return AttentionMaps(channel={
            f'branch {i + 1} (dilation {self.dilation * d}) weight': weights[i]
            for i, d in enumerate(self.branch_dilations)})

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, out_channels={self.out_channels}, '
                f'stride={self.stride}, dilation={self.dilation}, '
                f'num_branches={self.num_branches}, branch_dilations={self.branch_dilations}, '
                f'branch_groups={self.branch_groups}, split_input={self.split_input}, '
                f'attn_channels={self.attn_channels}')
