"""timm's SK-ResNets and SKNet-50 (``timm/models/sknet.py``, ``timm/layers/selective_kernel.py``).

Layout (read in huggingface/pytorch-image-models): timm's ``ResNet`` (7x7 stem ``conv1``/``bn1``,
max-pool, ``downsample.0/1``, classifier ``fc``) with SK blocks, whose convs are
``ConvNormAct`` (``.conv``, ``.bn``: a BatchNorm with its activation) and whose SK unit
(``SelectiveKernel``) holds ``paths.{0,1}`` (3x3 conv + BN + ReLU, dilation 1 and 2, the block's
stride) and ``attn`` (``fc_reduce`` 1x1 conv, ``bn``, ReLU, ``fc_select`` 1x1 conv with both
branches' logits, softmax across the branches):

- ``skresnet18``/``skresnet34`` (format ``timm-sk``; ``SelectiveKernelBasic``): ``conv1``
  *is* the SK unit (no BN or ReLU after it), ``conv2`` a 3x3 ``ConvNormAct`` without
  activation; the unit splits its input channels between the two paths
  (``split_input=True``), ``rd_ratio=1/8``, ``rd_divisor=16``:
  ``mmattn.SKConv(split_input=True, reduction=8, min_channels=16)`` in ``AttnResNet``'s conv1
  slot.
- ``skresnext50_32x4d`` (format ``timm-sk-x32x4d``; ``SelectiveKernelBottleneck``, cardinality
  32, base width 4; "should be equivalent to the SKNet50 model in the Select Kernel Paper"):
  ``conv1``/``conv3`` 1x1 ``ConvNormAct``, ``conv2`` the SK unit on all channels
  (``split_input=False``) with 32 groups, ``rd_ratio=1/16``, ``rd_divisor=32``:
  ``mmattn.SKConv()`` (M=2, r=16, L=32) in ``AttnResNeXt``'s conv2 slot, the block's 32 groups.

timm rounds the fuse width to a multiple of ``rd_divisor`` (``make_divisible``); at every width
of these networks that is SKConv's ``max(C // r, L)`` (16, 16, 32, 64 and 32, 32, 32, 64), and
a width that differs is refused by its shape.
"""
from ..common import ConverterFormat, KeyMapper
from ._plugin_resnet import depths_of
from ._sk_resnet import map_sk_resnet, sk_conv_tensors

TIMM = 'https://github.com/huggingface/pytorch-image-models'
RESULTS = f'{TIMM}/blob/main/results/results-imagenet.csv'
BASIC_SK = dict(type='mmattn.SKConv', split_input=True, reduction=8, min_channels=16)

REFUSED = (
    ('skresnet26d', '2 bottlenecks per stage (ResNet-26), a depth mmdet\'s ResNet does not '
     'have, and a deep stem 32 wide'),
    ('skresnet50', 'listed untrained by timm (no released weights); a ResNet-50 whose SK unit '
     'splits its input between the paths without groups (d rounded to 8), not '
     'skresnext50_32x4d (format timm-sk-x32x4d)'),
    ('skresnet50d', 'listed untrained by timm (no released weights); a deep stem with average-'
     'pool downsampling and an SK unit that splits its input, not skresnext50_32x4d (format '
     'timm-sk-x32x4d)'),
)


def _backbone(resnext: bool):
    def build(depth: int) -> dict:
        if resnext:
            return dict(type='mmattn.AttnResNeXt', depth=depth, groups=32, base_width=4,
                        conv2_cfg=dict(type='mmattn.SKConv'))
        return dict(type='mmattn.AttnResNet', depth=depth, conv1_cfg=dict(BASIC_SK))

    return build


def _sk(m: KeyMapper, src: str, dst: str) -> None:
    sk_conv_tensors(m, dst, [(f'{src}paths.{p}.conv', f'{src}paths.{p}.bn') for p in (0, 1)],
                    f'{src}attn.fc_reduce', f'{src}attn.bn', f'{src}attn.fc_select')


def _convert(name: str, resnext: bool):
    def convert(src_state, depth):
        mapper = KeyMapper(src_state, name)

        def block(m, src, dst, stage, j):
            if resnext:
                m.conv(src + 'conv1.conv', dst + 'conv1', 'resnet')
                m.bn(src + 'conv1.bn', dst + 'bn1', 'resnet')
                _sk(m, src + 'conv2.', dst + 'conv2.')
                m.conv(src + 'conv3.conv', dst + 'conv3', 'resnet')
                m.bn(src + 'conv3.bn', dst + 'bn3', 'resnet')
            else:
                _sk(m, src + 'conv1.', dst + 'conv1.')
                m.conv(src + 'conv2.conv', dst + 'conv2', 'resnet')
                m.bn(src + 'conv2.bn', dst + 'bn2', 'resnet')

        map_sk_resnet(mapper, depth, block)
        return mapper.finish()

    return convert


FORMATS = [
    ConverterFormat(
        name='timm-sk',
        description='timm skresnet18 / skresnet34 (SK unit as the first 3x3 conv of every '
        'BasicBlock, input split between its paths)',
        published='timm skresnet18.ra_in1k, skresnet34.ra_in1k (Hugging Face hub timm/...; '
        f'{TIMM}/releases)',
        backbone=_backbone(resnext=False),
        convert=_convert('timm-sk', resnext=False),
        depths=depths_of(18, 34),
        figures=(f'ImageNet top-1 at 224: skresnet18.ra_in1k 73.02, skresnet34.ra_in1k 76.96 '
                 f'({RESULTS})', ),
        unsupported=tuple(f'{name}: {why}' for name, why in REFUSED),
        networks=('skresnet18', 'skresnet34'),
        refused_networks=REFUSED),
    ConverterFormat(
        name='timm-sk-x32x4d',
        description='timm skresnext50_32x4d (SKNet-50: SK unit as the grouped 3x3 conv of '
        'every ResNeXt-50 32x4d bottleneck)',
        published='timm skresnext50_32x4d.ra_in1k (Hugging Face hub '
        f'timm/skresnext50_32x4d.ra_in1k; {TIMM}/releases)',
        backbone=_backbone(resnext=True),
        convert=_convert('timm-sk-x32x4d', resnext=True),
        depths=depths_of(50),
        figures=(f'ImageNet top-1 at 224: skresnext50_32x4d.ra_in1k 80.17 ({RESULTS})',
                 'SKNet-50 (the authors\' Caffe network, 27.5 M parameters): ImageNet top-1 '
                 'error 20.79 at 224 (implus/SKNet README, Table 2)'),
        networks=('skresnext50_32x4d', )),
]
