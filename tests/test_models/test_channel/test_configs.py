"""The channel-attention detection configs build the authors' placement in mmdet's ResNet-50."""
import os.path as osp

import pytest
import torch

from mmattn.models.channel import (CSE, ECA, SCSE, SPA, SRM, SSE, FcaNet, GatherExcite,
                                   GSoP)
from tests.helpers import requires_mmdet

CONFIGS = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs')


def _backbone(name):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    register_all_modules()
    cfg = Config.fromfile(osp.join(CONFIGS, f'faster_rcnn_{name}_r50_coco.py'))
    backbone = cfg.model.backbone
    if backbone.type == 'mmattn.AttnResNet' and 'mmattn.AttnResNet' not in MODELS:
        pytest.skip('needs mmattn.AttnResNet')
    backbone.init_cfg = None  # no download of torchvision's weights
    net = MODELS.build(backbone)
    net.eval()  # mmdet's ResNet.train() returns None: no chaining
    return net


def _blocks(net):
    return [list(layer) for layer in (net.layer1, net.layer2, net.layer3, net.layer4)]


def _modules(block, cls):
    return [m for m in block.children() if isinstance(m, cls)]


@requires_mmdet
@pytest.mark.parametrize('name,cls', [('eca', ECA), ('ge', GatherExcite), ('srm', SRM),
                                      ('spa', SPA), ('cse', CSE), ('sse', SSE),
                                      ('scse', SCSE)])
def test_every_block_config(name, cls):
    net = _backbone(name)
    for stage in _blocks(net):
        for block in stage:
            (m, ) = _modules(block, cls)
            assert block.after_conv3_plugin_names == [cls._abbr_]
            assert m.in_channels == block.conv3.out_channels
    with torch.no_grad():
        outs = net(torch.randn(1, 3, 64, 96))
    assert [o.shape[1] for o in outs] == [256, 512, 1024, 2048]


@requires_mmdet
def test_fcanet_config_basis_per_stage():
    net = _backbone('fcanet')
    for stage, size in zip(_blocks(net), (56, 28, 14, 7)):
        for block in stage:
            (m, ) = _modules(block, FcaNet)
            assert m.dct_size == (size, size) and m.freq_sel_method == 'top16'
    with torch.no_grad():
        outs = net(torch.randn(1, 3, 64, 96))  # maps smaller than the bases
    assert [o.shape[1] for o in outs] == [256, 512, 1024, 2048]


@requires_mmdet
def test_gsop_config_last_block_only():
    net = _backbone('gsop')
    for i, stage in enumerate(_blocks(net)):
        for j, block in enumerate(stage):
            mods = _modules(block, GSoP)
            if j == len(stage) - 1:
                assert len(mods) == 1 and mods[0].att_dim == 128
                assert mods[0].dr_stride == (2 if i == 0 else 1)
            else:
                assert not mods
    with torch.no_grad():
        outs = net(torch.randn(1, 3, 64, 96))
    assert [o.shape[1] for o in outs] == [256, 512, 1024, 2048]
