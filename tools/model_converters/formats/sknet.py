"""implus/PytorchInsight's SK-ResNet50* / SK-ResNet101*: the SK unit in a ResNet bottleneck, by
the first author of SKNet, with released ImageNet weights.

Source: implus/PytorchInsight ``classification/models/imagenet/resnet_sk.py`` (``sk_resnet50``,
``sk_resnet101``, ``sk_resnet152``; its ``sk_resnet18``/``34`` are plain ResNets). Its README calls
them "a modified version (for more fair comparison with ResNet backbone here) of original
SKNet": another network than SKNet-50 (format ``timm-sk``), with the same split, fuse, select.

Layout (read from the authors' code): torchvision's ResNet names and layout (7x7 stem, stride
on the 3x3 conv, ``downsample.0/1``, classifier ``fc``), and in every bottleneck the 3x3 conv
replaced by two branches, ``conv2``/``bn2`` (3x3, dense) and ``conv2g``/``bn2g`` (3x3, 32
groups), both with the block's stride, padding 1 and no dilation, each followed by ReLU; fuse:
``avg_pool(d1) + avg_pool(d2)`` -> ``conv_fc1`` (1x1, C -> C // 16, no bias) -> ``bn_fc1`` ->
ReLU; select: ``conv_fc2`` (1x1, C // 16 -> 2C, no bias) viewed as (2, C), softmax across the two
branches; ``d1 * a1 + d2 * a2`` goes to ``conv3`` (no BN or ReLU after the unit). That is
``mmattn.SKConv(branch_dilations=(1, 1), branch_groups=(1, 32), min_channels=1)`` (r = 16) in
``AttnResNet``'s conv2 slot.

The authors' pooling averages each branch and adds the means; SKConv averages their sum:
equal up to float rounding.
"""
from ..common import ConverterFormat, KeyMapper
from ._plugin_resnet import depths_of
from ._sk_resnet import map_sk_resnet, sk_conv_tensors

_REPO = 'https://github.com/implus/PytorchInsight'
SK_RESNET = dict(type='mmattn.SKConv', branch_dilations=(1, 1), branch_groups=(1, 32),
                 min_channels=1)


def sknet_backbone(depth: int) -> dict:
    return dict(type='mmattn.AttnResNet', depth=depth, conv2_cfg=dict(SK_RESNET))


def sknet_convert(src_state, depth):
    mapper = KeyMapper(src_state, 'sknet')

    def block(m, src, dst, stage, j):
        m.conv(src + 'conv1', dst + 'conv1', 'resnet')
        m.bn(src + 'bn1', dst + 'bn1', 'resnet')
        sk_conv_tensors(m, dst + 'conv2.', [(src + 'conv2', src + 'bn2'),
                                            (src + 'conv2g', src + 'bn2g')],
                        src + 'conv_fc1', src + 'bn_fc1', src + 'conv_fc2')
        m.conv(src + 'conv3', dst + 'conv3', 'resnet')
        m.bn(src + 'bn3', dst + 'bn3', 'resnet')

    map_sk_resnet(mapper, depth, block)
    return mapper.finish()


FORMATS = [
    ConverterFormat(
        name='sknet',
        description='SK-ResNet* (implus/PytorchInsight resnet_sk: an SK unit with a dense and '
        'a 32-group 3x3 branch in place of the 3x3 conv of every ResNet bottleneck)',
        published=f'{_REPO} (README, "SK-ResNet50*", "SK-ResNet101*": BaiduDrive / '
        'GoogleDrive)',
        backbone=sknet_backbone,
        convert=sknet_convert,
        depths=depths_of(50, 101, 152),
        figures=('ImageNet top-1 77.538 (SK-ResNet50*, 26.15 M parameters), 78.792 '
                 '(SK-ResNet101*, 45.68 M); authors\' README', ),
        networks=('sk_resnet50', 'sk_resnet101', 'sk_resnet152'),
    ),
]
