"""CCNet's head, built from mmattn's criss-cross attention: mmseg's ``CCHead`` on any device.

Huang, Wang, Huang, Huang, Wei, Liu. "CCNet: Criss-Cross Attention for Semantic Segmentation",
ICCV 2019. Authors' code: https://github.com/speedinghzl/CCNet. mmseg's head:
``mmseg/models/decode_heads/cc_head.py`` (mmsegmentation 1.2.2), which runs
``mmcv.ops.CrissCrossAttention``.
"""
import torch
from mmseg.models.decode_heads.fcn_head import FCNHead

from mmattn.registry import MODELS
from ..context import CrissCross
from ._base import AttnHeadMixin


@MODELS.register_module()
class AttnCCHead(AttnHeadMixin, FCNHead):
    """mmseg's ``CCHead`` with mmattn's :class:`CrissCross`.

    An FCN head of two convs with the criss-cross attention between them, applied
    ``recurrence`` times with shared weights (mmseg loops its ``cca`` ``recurrence`` times; our
    module does the same loop inside), then ``conv_cat`` on ``[input, features]`` where
    ``concat_input`` (the default) and ``conv_seg``.

    Checkpoints: mmseg's ``cca.gamma.scale`` (mmcv's ``Scale``) loads into ``cca.gamma``; every
    other key is the same.

    Args:
        recurrence: passes of the criss-cross attention (mmseg's default and the authors'
            Cityscapes runs: 2). 0 skips the attention, as mmseg's loop does.
        **kwargs: mmseg's ``FCNHead`` arguments except ``num_convs`` (always 2, as in mmseg):
            ``kernel_size``, ``concat_input``, ``dilation``, and ``BaseDecodeHead``'s.
    """

    _mmseg_head = 'CCHead'
    _mmseg_keys = (('cca.gamma.scale', 'cca.gamma'), )

    def __init__(self, recurrence=2, **kwargs):
        if not isinstance(recurrence, int) or recurrence < 0:
            raise ValueError(f'AttnCCHead: recurrence must be an int >= 0, got {recurrence!r}')
        super().__init__(num_convs=2, **kwargs)
        self.recurrence = recurrence
        # the module keeps its weights for recurrence=0 too, so the state dict is mmseg's
        self.cca = CrissCross(self.channels, recurrence=max(recurrence, 1))

    def forward(self, inputs):
        """Logits at the feature map's size."""
        x = self._checked_inputs(inputs)
        output = self.convs[0](x)
        if self.recurrence > 0:
            output = self.cca(output)
        output = self.convs[1](output)
        if self.concat_input:
            output = self.conv_cat(torch.cat([x, output], dim=1))
        return self.cls_seg(output)
