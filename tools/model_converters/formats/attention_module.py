"""CBAM and BAM: the authors' ``ResidualNet`` ImageNet checkpoints.

Source: Jongchan/attention-module, ``MODELS/model_resnet.py`` (``ResidualNet('ImageNet', depth,
1000, 'CBAM' | 'BAM')``), ``MODELS/cbam.py``, ``MODELS/bam.py``; checkpoints saved by
``train_imagenet.py`` from ``nn.DataParallel`` (``{'state_dict': {'module.' + key: ...}, ...}``).

Layout (read from the authors' code):

- ResNet: torchvision's names and layout, stride on the 3x3 conv, BN defaults
  (``conv1``, ``bn1``, ``layer{i}.{j}.conv{1,2,3}``/``bn{1,2,3}``, ``downsample.{0,1}``, ``fc``).
- CBAM, in every block after ``bn3`` (ResNet-18/34: after ``bn2``), before the sum, as
  ``layer{i}.{j}.cbam``: ``ChannelGate.mlp.{1,3}`` (the shared MLP's two Linear layers, with
  bias; ``mlp.0`` is a Flatten), ``SpatialGate.spatial.conv`` (7x7, 2->1, no bias) and
  ``SpatialGate.spatial.bn`` (BN(1), eps 1e-5, momentum 0.01). Ours: ``mmattn.CBAM``
  (``fc1``, ``fc2``, ``spatial_gate.conv``, ``spatial_gate.bn``) at ``after_conv3``.
- BAM, between stages on the outputs of ``layer1``-``layer3`` as ``bam1``-``bam3``:
  ``channel_att.gate_c.{gate_c_fc_0, gate_c_bn_1 (BatchNorm1d), gate_c_fc_final}`` and
  ``spatial_att.gate_s.{gate_s_conv_reduce0, gate_s_bn_reduce0, gate_s_conv_di_{0,1},
  gate_s_bn_di_{0,1}, gate_s_conv_final}``. Ours: ``mmattn.BAM`` as a stage plugin of stages
  1-3 (``stage_plugins``), named ``layer{i}_attn.bam``; the BatchNorm1d's tensors go to our
  ``channel_norm`` (a BatchNorm2d run on an (N, C/r, 1, 1) view: the same statistics).
  The authors' BAM pools the channel branch with a square window of the map's height, which
  equals the global average only on square maps (ImageNet's); ours pools globally.

implus/PytorchInsight's ``resnet_cbam.py`` and ``resnet_bam.py`` are copies of this
``ResidualNet`` (same names and layout), so ``cbam`` and ``bam`` read the CBAM- and
BAM-ResNet-50/101 weights released there as well.
"""
from ..common import ConversionError, ConverterFormat
from ._plugin_resnet import attn_resnet, convert_blocks, depths_of, every_block

_REPO = 'https://github.com/Jongchan/attention-module'
_DEPTHS = depths_of(18, 34, 50, 101)


# ------------------------------------------------------------------------------------- CBAM
def _cbam_block(m, src, dst, stage, block):
    s, d = f'{src}cbam.', f'{dst}cbam.'
    m.conv(s + 'ChannelGate.mlp.1', d + 'fc1', 'cbam', bias=True)
    m.conv(s + 'ChannelGate.mlp.3', d + 'fc2', 'cbam', bias=True)
    m.conv(s + 'SpatialGate.spatial.conv', d + 'spatial_gate.conv', 'cbam')
    m.bn(s + 'SpatialGate.spatial.bn', d + 'spatial_gate.bn', 'cbam')


def cbam_convert(src_state, depth):
    k = src_state.get('layer1.0.cbam.SpatialGate.spatial.conv.weight')
    if k is not None and tuple(k.shape[2:]) != (7, 7):
        raise ConversionError(f'cbam: layer1.0.cbam.SpatialGate.spatial.conv.weight has '
                              f'shape {tuple(k.shape)}; the authors\' (and this config\'s) '
                              f'spatial gate is 7x7')
    return convert_blocks('cbam', src_state, depth, _cbam_block)


# -------------------------------------------------------------------------------------- BAM
def bam_backbone(depth: int) -> dict:
    return attn_resnet(depth, stage_plugins=[dict(
        cfg=dict(type='mmattn.BAM', reduction=16, dilation=4, fusion='product'),
        stages=(True, True, True, False))])


def _bam_stages(m):
    for i in (1, 2, 3):
        s, d = f'bam{i}.', f'layer{i}_attn.bam.'
        c, sp = s + 'channel_att.gate_c.', s + 'spatial_att.gate_s.'
        m.conv(c + 'gate_c_fc_0', d + 'channel_fc1', 'bam', bias=True)
        m.bn(c + 'gate_c_bn_1', d + 'channel_norm', 'bam')
        m.conv(c + 'gate_c_fc_final', d + 'channel_fc2', 'bam', bias=True)
        m.conv(sp + 'gate_s_conv_reduce0', d + 'spatial_reduce.conv', 'bam', bias=True)
        m.bn(sp + 'gate_s_bn_reduce0', d + 'spatial_reduce.bn', 'bam')
        for k in (0, 1):
            m.conv(f'{sp}gate_s_conv_di_{k}', f'{d}spatial_dilated.{k}.conv', 'bam', bias=True)
            m.bn(f'{sp}gate_s_bn_di_{k}', f'{d}spatial_dilated.{k}.bn', 'bam')
        m.conv(sp + 'gate_s_conv_final', d + 'spatial_out', 'bam', bias=True)


def bam_convert(src_state, depth):
    return convert_blocks('bam', src_state, depth, lambda *a: None, extra=_bam_stages)


FORMATS = [
    ConverterFormat(
        name='cbam',
        description='CBAM-ResNet (authors\' ResidualNet, CBAM after bn3 in every block)',
        published=f'{_REPO} (README, "Resume with checkpoints": ResNet50+CBAM, Google Drive); '
                  'also implus/PytorchInsight\'s CBAM-ResNet50/101 (README, same layout)',
        backbone=every_block(dict(type='mmattn.CBAM', reduction=16, kernel_size=7)),
        convert=cbam_convert,
        depths=_DEPTHS,
        figures=('ImageNet top-1 77.622 (ResNet50+CBAM, 100 epochs; authors\' README)',
                 'ImageNet top-1 77.626 (CBAM-ResNet50), 78.354 (CBAM-ResNet101); '
                 'implus/PytorchInsight README'),
    ),
    ConverterFormat(
        name='bam',
        description='BAM-ResNet (authors\' ResidualNet, BAM after layer1, layer2, layer3)',
        published=f'{_REPO} (README, "Resume with checkpoints": ResNet50+BAM, Google Drive); '
                  'also implus/PytorchInsight\'s BAM-ResNet50/101 (README, same layout)',
        backbone=bam_backbone,
        convert=bam_convert,
        depths=_DEPTHS,
        figures=('ImageNet top-1 76.860 (ResNet50+BAM, 90 epochs; authors\' README)',
                 'ImageNet top-1 76.898 (BAM-ResNet50), 78.218 (BAM-ResNet101); '
                 'implus/PytorchInsight README'),
    ),
]
