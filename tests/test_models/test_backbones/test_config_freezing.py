"""Every detection config trains the attention modules its backbone places; the configs that
start from a converted checkpoint (configs/pretrained/) freeze them as the papers did.

torchvision's ResNet weights hold no attention weights, so a module that a frozen stage froze
would stay at its initialisation for the whole run. A checkpoint converted from the authors'
ImageNet weights holds them: there ``freeze_plugins=True`` freezes layer1 whole, as in the
papers' detection runs, and the checkpoint's format must be one that writes every attention
module type of the backbone. Generated from configs/, so a new config cannot skip it.
"""
import glob
import os.path as osp

import pytest

from mmattn.models.base import BaseAttention
from tests.helpers import requires_mmdet

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'faster_rcnn_*_r50_coco.py')))
PRETRAINED = sorted(glob.glob(osp.join(ROOT, 'configs', 'pretrained', '*.py')))


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


@pytest.mark.parametrize('path', PRETRAINED, ids=lambda p: osp.basename(p)[:-3])
def test_pretrained_configs_freeze_what_their_checkpoint_holds(path):
    from mmengine.config import Config
    from mmattn.registry import MODELS
    from mmattn.utils.pretrained import CONVERTER_FORMATS, format_of_checkpoint
    cfg = Config.fromfile(path)
    backbone = cfg.model.backbone
    assert backbone.type.startswith('mmattn.'), 'freeze_plugins needs an mmattn backbone'
    if backbone.type.split('.')[-1] not in MODELS:
        pytest.skip(f'needs {backbone.type}')
    init = backbone.init_cfg
    assert init.type == 'Pretrained' and init.checkpoint.startswith('checkpoints/')
    fmt = format_of_checkpoint(init.checkpoint)
    assert fmt, f'{init.checkpoint}: not named <converter format>_r<depth>.pth'
    assert backbone.freeze_plugins is True and backbone.frozen_stages == 1
    backbone.init_cfg = None  # the converted file is not here
    try:
        net = MODELS.build(backbone)
    except ImportError as err:  # AttnResNetV1c without mmseg
        pytest.skip(str(err))
    net.train()
    attention = {name: m for name, m in net.named_modules() if isinstance(m, BaseAttention)}
    assert attention, 'a converted checkpoint for a backbone without attention modules'
    # the checkpoint's format writes every attention module type the backbone has
    types = {type(m).__name__ for m in attention.values()}
    assert all(fmt in CONVERTER_FORMATS.get(t, ()) for t in types), (fmt, types)
    # stem and layer1 frozen whole, attention modules included; layer2-4 train
    assert not any(p.requires_grad for p in net.layer1.parameters())
    stem = net.stem if net.deep_stem else net.conv1
    assert not any(p.requires_grad for p in stem.parameters())
    for i in (2, 3, 4):
        assert all(p.requires_grad for p in getattr(net, f'layer{i}').parameters())
    frozen_attention = [n for n, m in attention.items()
                        if any(not p.requires_grad for p in m.parameters())]
    assert frozen_attention == [n for n, m in attention.items()
                                if n.startswith(('layer1.', 'layer1_attn.'))
                                and list(m.parameters())]
