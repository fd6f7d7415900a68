"""DANet's head, built from mmattn's PAM and CAM: mmseg's ``DAHead`` without the HW x HW matrix.

Fu, Liu, Tian, Li, Bao, Fang, Lu. "Dual Attention Network for Scene Segmentation", CVPR 2019.
Authors' code: https://github.com/junfu1115/DANet. mmseg's head:
``mmseg/models/decode_heads/da_head.py`` (mmsegmentation 1.2.2).
"""
from typing import List, Tuple

from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.utils import SampleList, add_prefix
from torch import Tensor, nn

from mmattn.registry import MODELS
from ..context import DANetCAM, DANetPAM
from ._base import AttnHeadMixin


@MODELS.register_module()
class AttnDAHead(AttnHeadMixin, BaseDecodeHead):
    """mmseg's ``DAHead`` (DANet) with mmattn's :class:`DANetPAM` and :class:`DANetCAM`.

    Two branches on the input: ``pam_in_conv`` (3x3 ConvModule) -> PAM -> ``pam_out_conv`` and
    ``cam_in_conv`` -> CAM -> ``cam_out_conv``; each is classified on its own (``pam_conv_seg``,
    ``cam_conv_seg``, after the head's dropout) and their sum by ``conv_seg``. ``forward``
    returns ``(pam_cam, pam, cam)`` logits; training adds the three losses (prefixes
    ``pam_cam.``, ``pam.``, ``cam.``), prediction uses ``pam_cam`` only, as mmseg's head does.

    The position attention relates every pixel to every other. mmseg's PAM holds the HW x HW
    energies and their softmax (2 x 4 GiB in float32 at 128 x 256, the 1/8 map of a
    1024 x 2048 Cityscapes image); ours attends by blocks of queries (``lean=True``, the
    default) with the same result. See ``tools/benchmarks/seg_heads.py``.

    Checkpoints: mmseg's keys ``pam.{query,key,value}_project.*`` load into
    ``pam.{query,key,value}_conv.*`` and ``{pam,cam}.gamma.scale`` into ``{pam,cam}.gamma``.

    Args:
        pam_channels: query/key width of the position attention (mmseg's configs: 64 for
            ``channels=512``).
        lean: False runs the position attention with the explicit matrix (as mmseg).
        **kwargs: mmseg's ``BaseDecodeHead`` arguments (``in_channels``, ``channels``,
            ``num_classes``, ``dropout_ratio``, ``norm_cfg``, ``align_corners``,
            ``loss_decode``, ...).
    """

    _mmseg_head = 'DAHead'
    _mmseg_keys = (
        ('pam.query_project.', 'pam.query_conv.'),
        ('pam.key_project.', 'pam.key_conv.'),
        ('pam.value_project.', 'pam.value_conv.'),
        ('pam.gamma.scale', 'pam.gamma'),
        ('cam.gamma.scale', 'cam.gamma'),
    )

    def __init__(self, pam_channels, lean=True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(pam_channels, int) or pam_channels < 1:
            raise ValueError(f'AttnDAHead: pam_channels must be a positive int, '
                             f'got {pam_channels!r}')
        self.pam_channels = pam_channels
        conv = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        self.pam_in_conv = ConvModule(self.in_channels, self.channels, 3, padding=1, **conv)
        self.pam = DANetPAM(self.channels, key_channels=pam_channels, lean=lean)
        self.pam_out_conv = ConvModule(self.channels, self.channels, 3, padding=1, **conv)
        self.pam_conv_seg = nn.Conv2d(self.channels, self.num_classes, kernel_size=1)

        self.cam_in_conv = ConvModule(self.in_channels, self.channels, 3, padding=1, **conv)
        self.cam = DANetCAM(self.channels)
        self.cam_out_conv = ConvModule(self.channels, self.channels, 3, padding=1, **conv)
        self.cam_conv_seg = nn.Conv2d(self.channels, self.num_classes, kernel_size=1)

    def pam_cls_seg(self, feat: Tensor) -> Tensor:
        """Classify the PAM branch."""
        if self.dropout is not None:
            feat = self.dropout(feat)
        return self.pam_conv_seg(feat)

    def cam_cls_seg(self, feat: Tensor) -> Tensor:
        """Classify the CAM branch."""
        if self.dropout is not None:
            feat = self.dropout(feat)
        return self.cam_conv_seg(feat)

    def forward(self, inputs) -> Tuple[Tensor, Tensor, Tensor]:
        """(pam_cam, pam, cam) logits at the feature map's size."""
        x = self._checked_inputs(inputs)
        pam_feat = self.pam_out_conv(self.pam(self.pam_in_conv(x)))
        pam_out = self.pam_cls_seg(pam_feat)
        cam_feat = self.cam_out_conv(self.cam(self.cam_in_conv(x)))
        cam_out = self.cam_cls_seg(cam_feat)
        pam_cam_out = self.cls_seg(pam_feat + cam_feat)
        return pam_cam_out, pam_out, cam_out

    def predict(self, inputs, batch_img_metas: List[dict], test_cfg, **kwargs) -> Tensor:
        """Logits of the fused branch, resized to the image (the other two are for training)."""
        seg_logits = self.forward(inputs)[0]
        return self.predict_by_feat(seg_logits, batch_img_metas, **kwargs)

    def loss_by_feat(self, seg_logit: Tuple[Tensor, Tensor, Tensor],
                     batch_data_samples: SampleList, **kwargs) -> dict:
        """The losses of the ``pam_cam``, ``pam`` and ``cam`` logits."""
        pam_cam, pam, cam = seg_logit
        loss = dict()
        for logits, name in ((pam_cam, 'pam_cam'), (pam, 'pam'), (cam, 'cam')):
            loss.update(add_prefix(super().loss_by_feat(logits, batch_data_samples), name))
        return loss
