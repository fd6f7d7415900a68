"""Released attention ResNets whose layout our backbones cannot express: SimAM and SK.

Converting them approximately would produce weights for a different network, so these formats
refuse, with the reason (also printed by ``convert.py --list``).

SimAM (ZjjConan/SimAM, ``networks/imagenet/resnet.py``): the block wraps its 3x3 conv as
``conv2 = nn.Sequential(conv2, simam_module(width))``, so SimAM runs between ``conv2`` and
``bn2`` (checkpoint keys ``layer{i}.{j}.conv2.0.weight``; SimAM has no tensors). Our
backbones' plugin points are ``after_conv1``/``after_conv2`` (after the conv, its BN and
ReLU), ``after_conv3`` (after ``bn3``) and ``after_block``: none lies between a conv and its
BN, and SimAM commutes with neither the BN's per-channel affine map (its energy term
``d / (4 (var + lambda))`` keeps lambda fixed while the BN rescales the variance, and the gate
multiplies the BN's shift too) nor the ReLU.

SK (timm ``skresnet18``/``skresnet34``/``skresnext50_32x4d``, released on the Hugging Face hub;
the authors' implus/SKNet is Caffe): the SK unit *replaces* a 3x3 conv of the block,
strided in a stage's first block (ResNet-18/34: ``conv1`` becomes ``conv1.paths.{0,1}`` +
``conv1.attn.{fc_reduce,bn,fc_select}``; SK-ResNeXt-50: ``conv2`` becomes ``conv2.paths`` +
``conv2.attn``, with 32 groups), and timm splits the input channels between the paths
(``split_input=True``). ``mmattn.SelectiveKernel`` is a plugin that runs *next to* the block's
own convs (``AttnResNet``'s or ``AttnResNeXt``'s, which keep their conv2) at stride 1 on all
channels.
implus/PytorchInsight's SK-ResNet50* (``resnet_sk.py``) likewise replaces ``conv2`` by two
branches (``conv2``, ``conv2g``) and its fuse layers.
"""
from ._plugin_resnet import depths_of, refusing_format

SIMAM_REASON = (
    'SimAM sits between conv2 and bn2 in the authors\' ResNets (conv2 = Sequential(conv2, '
    'simam), keys layer{i}.{j}.conv2.0.weight); AttnResNet has no plugin point between a conv '
    'and its BN (after_conv2 follows bn2 and its ReLU), and SimAM commutes with neither, so '
    'no config of ours computes the released network')
SK_REASON = (
    'the SK unit replaces a (strided) 3x3 conv of the block (timm skresnet18/34: conv1 -> '
    'conv1.paths/conv1.attn; skresnext50_32x4d: the grouped conv2 -> conv2.paths/conv2.attn, '
    'input split between paths), while mmattn.SelectiveKernel is a plugin that runs next to '
    'the block\'s own convs (AttnResNet\'s or AttnResNeXt\'s) at stride 1, on all channels')

FORMATS = [
    refusing_format(
        'simam', 'SimAM-ResNet (authors\' networks/imagenet/resnet.py)',
        'https://github.com/ZjjConan/SimAM (README, ImageNet table, Google Drive / BaiduYunPan)',
        SIMAM_REASON, depths_of(18, 34, 50, 101),
        figures=('ImageNet top-1 77.45 (SimAM-R50); COCO box AP 39.2 (Faster R-CNN '
                 'SimAM-R50); authors\' README', )),
    refusing_format(
        'timm-sk', 'timm SK-ResNet / SK-ResNeXt (skresnet18, skresnet34, skresnext50_32x4d)',
        'timm (Hugging Face hub timm/skresnet18.ra_in1k, timm/skresnet34.ra_in1k, '
        'timm/skresnext50_32x4d.ra_in1k)',
        SK_REASON, depths_of(18, 34, 50),
        networks=('skresnet18', 'skresnet34', 'skresnext50_32x4d')),
]
