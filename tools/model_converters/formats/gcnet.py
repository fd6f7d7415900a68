"""GC: the backbones of the authors' GCNet detectors (mmdetection v1 checkpoints).

Source: xvjiarui/GCNet, ``mmdet/models/backbones/resnet.py`` (``gcb=dict(ratio=...)``,
``stage_with_gcb=(False, True, True, True)``) and ``mmdet/ops/gcb/context_block.py``; configs
``configs/gcnet/r50/mask_rcnn_r{16,4}_gcb_c3-c5_r50_fpn_{1x,2x}.py``. The authors released no
ImageNet GC-ResNet: their GC blocks were trained on COCO inside Mask R-CNN, from torchvision's
ImageNet ResNet-50. This format takes such a detector checkpoint and keeps its backbone.

Layout (read from the authors' code): mmdetection v1's ResNet (the same names as mmdet 3's:
``bn1``, ``layer{i}.{j}.conv{1,2,3}``/``bn{1,2,3}``, ``downsample.{0,1}``, style 'pytorch':
stride on the 3x3 conv) under ``backbone.``, and ``layer{i}.{j}.context_block`` in the blocks
of stages 2-4 (c3-c5), after ``bn3``, before the sum: ``conv_mask`` (C->1, bias) and
``channel_add_conv.{0 (C->C*ratio), 1 (LayerNorm([C*ratio, 1, 1])), 3 (C*ratio->C)}``, ratio
1/16 (format ``gcnet``) or 1/4 (``gcnet-r4``). Ours: ``mmattn.GlobalContext`` (same names) at
``after_conv3`` of stages 2-4. The neck and heads (``neck.*``, ``rpn_head.*``,
``bbox_head.*``, ``mask_head.*``...) are dropped.
"""
from ..common import ConversionError, ConverterFormat
from ._plugin_resnet import convert_blocks, depths_of, every_block

_REPO = 'https://github.com/xvjiarui/GCNet'
_STAGES = (False, True, True, True)


def _convert(name, ratio):

    def convert(src_state, depth):
        if not any(k.startswith('backbone.') for k in src_state):
            raise ConversionError(f'{name}: no "backbone." tensors: expected a GCNet detector '
                                  f'checkpoint (mmdetection v1)')

        def block(m, src, dst, stage, j):
            s, d = f'{src}context_block.', f'{dst}context_block.'
            w = src_state.get(s + 'channel_add_conv.0.weight')
            if w is not None and w.shape[0] != max(1, int(w.shape[1] * ratio)):
                other = {16: 'gcnet', 4: 'gcnet-r4'}.get(round(w.shape[1] / w.shape[0]))
                raise ConversionError(
                    f'{name}: {s}channel_add_conv.0.weight has shape {tuple(w.shape)}, ratio '
                    f'1/{w.shape[1] / w.shape[0]:g}; this format is for ratio {ratio:g}'
                    + (f' (use format {other!r})' if other else ''))
            m.conv(s + 'conv_mask', d + 'conv_mask', 'context_block', bias=True)
            for k in (0, 1, 3):
                m.conv(f'{s}channel_add_conv.{k}', f'{d}channel_add_conv.{k}', 'context_block',
                       bias=True)

        def drop_detector(m):
            m.drop_matching(r'(?!backbone\.).*', 'the detector\'s neck and heads')

        return convert_blocks(name, src_state, depth, block, stage_on=_STAGES,
                              src_prefix='backbone.', drop_head=False, extra=drop_detector)

    return convert


def _format(name, r, figures):
    return ConverterFormat(
        layer_prefix='backbone.layer{}.',
        name=name,
        description=f'GCNet detector backbone (authors\' mmdetection v1 ResNet, GC r{r} after '
                    f'bn3 in stages 2-4)',
        published=f'{_REPO} (README, "Main Results": mask_rcnn_r{r}_gcb_c3-c5_r50_fpn models, '
                  'open-mmlab S3 / OneDrive); detector checkpoints, not ImageNet ones',
        backbone=every_block(dict(type='mmattn.GlobalContext', ratio=1. / r, pooling_type='att',
                                  fusion_types=('channel_add', )), stages=_STAGES),
        convert=_convert(name, 1. / r),
        depths=depths_of(50, 101),
        figures=figures,
    )


FORMATS = [
    _format('gcnet', 16, ('COCO box AP 38.5 / mask AP 35.1 (Mask R-CNN R50-FPN 1x, fixBN, '
                          'GC c3-c5 r16); 39.4 / 35.7 with SyncBN; authors\' README', )),
    _format('gcnet-r4', 4, ('COCO box AP 38.9 / mask AP 35.5 (Mask R-CNN R50-FPN 1x, fixBN, '
                            'GC c3-c5 r4); 39.9 / 36.2 with SyncBN; authors\' README', )),
]
