"""The spatial family's detection configs build the authors' placement and run."""
import os.path as osp

import pytest
import torch

from tests.helpers import requires_mmdet

CONFIG_DIR = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..', '..', 'configs')

# config abbreviation -> (registry name, plugin position, module kwargs to check)
IN_BLOCK = {
    'cbam': ('CBAM', 'after_conv3', dict(reduction=16)),
    'sge': ('SGE', 'after_conv3', dict(groups=64)),
    'triplet': ('TripletAttention', 'after_conv3', dict()),
    'coordatt': ('CoordAttention', 'after_conv3', dict(reduction=32)),
}
# config abbreviation -> (the conv2 slot layer's class, its checkpoint, what to check)
CONV_SLOT = {
    'simam': ('AttnConv2d', 'torchvision://resnet50', 'simam'),
    'sk': ('SKConv', 'open-mmlab://resnext50_32x4d', 'sk'),
}


def _backbone(abbr, checkpoint='torchvision://resnet50'):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    register_all_modules()
    cfg = Config.fromfile(osp.join(CONFIG_DIR, f'faster_rcnn_{abbr}_r50_coco.py'))
    bb = cfg.model.backbone.copy()
    assert bb.pop('init_cfg')['checkpoint'] == checkpoint   # no download here
    return cfg, MODELS.build(bb)


def _check_runs(backbone):
    backbone.train()
    outs = backbone(torch.randn(2, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [256, 512, 1024, 2048]
    assert all(torch.isfinite(o).all() for o in outs)


@requires_mmdet
@pytest.mark.parametrize('abbr', sorted(IN_BLOCK))
def test_in_block_config(abbr):
    from mmattn.models import attention_classes
    name, position, kwargs = IN_BLOCK[abbr]
    cls = attention_classes()[name]
    _, net = _backbone(abbr)
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        for blk in layer:
            names = getattr(blk, f'{position}_plugin_names')
            mods = [getattr(blk, n) for n in names]
            assert len(mods) == 1 and isinstance(mods[0], cls), (abbr, names)
            width = blk.planes * (4 if position == 'after_conv3' else 1)
            assert mods[0].in_channels == width
            for k, v in kwargs.items():
                assert getattr(mods[0], k) == v
    _check_runs(net)


@requires_mmdet
@pytest.mark.parametrize('abbr', sorted(CONV_SLOT))
def test_conv_slot_config(abbr):
    """SimAM right after every bottleneck's 3x3 conv, before bn2 (lambda 0.1); SKNet-50: a
    ResNeXt-50 32x4d whose 3x3 convs are SK units (M=2, 32 groups, no bn2)."""
    from mmattn.registry import MODELS
    name, checkpoint, kind = CONV_SLOT[abbr]
    cfg, net = _backbone(abbr, checkpoint)
    assert cfg.model.backbone.stage_with_conv2_cfg == (True, ) * 4 and net.frozen_stages == 1
    cls = MODELS.get(name)
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        for blk in layer:
            assert type(blk.conv2) is cls
            if kind == 'simam':
                assert blk.conv2.attn.e_lambda == 0.1 and hasattr(blk, 'bn2')
                assert blk.conv2.out_channels == blk.planes
            else:
                assert blk.conv2.num_branches == 2 and not hasattr(blk, 'bn2')
                assert blk.conv2.branch_groups == (32, 32)
                assert blk.conv2.out_channels == blk.planes * 2  # 32x4d: 128 in layer1
    _check_runs(net)


@requires_mmdet
@pytest.mark.parametrize('abbr,levels', [('bam', None), ('resatt', (3, 2, 1))])
def test_between_stages_config(abbr, levels):
    from mmattn.models import attention_classes
    cfg, net = _backbone(abbr)
    assert cfg.model.backbone.type == 'mmattn.AttnResNet' and net.frozen_stages == 1
    cls = attention_classes()['BAM' if abbr == 'bam' else 'ResidualAttention']
    for i, channels in enumerate((256, 512, 1024)):
        mods = list(getattr(net, f'layer{i + 1}_attn').children())
        assert len(mods) == 1 and isinstance(mods[0], cls)
        assert mods[0].in_channels == channels
        if levels:
            assert mods[0].num_downsamples == levels[i]
    assert not hasattr(net, 'layer4_attn')
    _check_runs(net)
