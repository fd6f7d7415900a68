"""Every detection config trains the attention modules its backbone places.

torchvision's ResNet weights hold no attention weights, so a module that a frozen stage froze
would stay at its initialisation for the whole run. Generated from configs/, so a new config
cannot skip it.
"""
import glob
import os.path as osp

import pytest

from mmattn.models.base import BaseAttention
from tests.helpers import requires_mmdet

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'faster_rcnn_*_r50_coco.py')))


@requires_mmdet
@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.basename(p)[:-3])
def test_attention_modules_of_frozen_stages_train(path):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    register_all_modules()
    cfg = Config.fromfile(path)
    backbone = cfg.model.backbone
    backbone.init_cfg = None  # no download of torchvision's weights
    net = MODELS.build(backbone)
    net.train()
    attention = {name: m for name, m in net.named_modules() if isinstance(m, BaseAttention)}
    if not attention:
        pytest.skip('no attention module in the backbone (a neck or head config)')
    frozen = [name for name, m in attention.items()
              if any(not p.requires_grad for p in m.parameters())]
    assert not frozen, f'frozen at their initialisation: {frozen}'
    # the ResNet's own layers of the frozen stages are frozen as in mmdet's baseline
    assert net.frozen_stages == 1
    assert not any(p.requires_grad for p in net.conv1.parameters())
    inside = {id(p) for m in attention.values() for p in m.parameters()}
    own = [p for p in net.layer1.parameters() if id(p) not in inside]
    assert own and not any(p.requires_grad for p in own)
    assert all(p.requires_grad for p in net.layer2.parameters())
