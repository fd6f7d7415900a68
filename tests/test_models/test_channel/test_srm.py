import os.path as osp

import pytest
import torch
from torch import nn

from mmattn.models.channel import SRM
from tests.helpers import assert_close, has_module, randomize_
from .reference import bn_eval

CONFIG = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs',
                  'faster_rcnn_srm_r50_coco.py')


def srm_reference(x, cfc, bn, eps=1e-5):
    """Style pooling (mean, sqrt(unbiased var + eps)), channel-wise FC, BN, sigmoid, product."""
    n = x.shape[2] * x.shape[3]
    mean = x.mean((2, 3))
    var = ((x - mean[:, :, None, None]) ** 2).sum((2, 3)) / (n - 1) if n > 1 else 0 * mean
    std = torch.sqrt(var + eps)
    z = cfc[:, 0] * mean + cfc[:, 1] * std
    g = torch.sigmoid(bn_eval(z[:, :, None, None], bn))
    return x * g


@pytest.mark.parametrize('hw', [(5, 7), (1, 4), (1, 1)])
def test_srm_matches_formula(hw):
    m = randomize_(SRM(24)).double().eval()
    x = torch.randn(3, 24, *hw, dtype=torch.float64) * 2 + 1
    assert_close(m(x), srm_reference(x, m.cfc, m.bn))


def test_srm_initial_state():
    m = SRM(256)
    assert m.cfc.shape == (256, 2) and torch.equal(m.cfc, torch.zeros(256, 2))
    assert isinstance(m.bn, nn.BatchNorm2d) and m.bn.num_features == 256
    assert sum(p.numel() for p in m.parameters()) == 2 * 256 + 2 * 256
    # a zero cfc gives every channel the gate sigmoid(BN(0)) = 0.5 at the start
    x = torch.randn(2, 256, 6, 6)
    assert_close(m.eval()(x), x * 0.5)
    # the zero init survives a backbone's init_weights
    with torch.no_grad():
        m.cfc.fill_(1.0)
    m.init_weights()
    assert torch.equal(m.cfc, torch.zeros(256, 2))


def _decays(model, paramwise_cfg):
    from mmengine.optim import DefaultOptimWrapperConstructor
    ctor = DefaultOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1, weight_decay=1e-4)),
        paramwise_cfg)
    optim = ctor(model).optimizer
    return {id(p): g['weight_decay'] for g in optim.param_groups for p in g['params']}


class _Block(nn.Module):
    """A ResNet block as mmdet builds it: the plugin is the attribute named by its _abbr_."""

    def __init__(self):
        super().__init__()
        self.conv3 = nn.Conv2d(16, 16, 1)
        self.srm = SRM(16)


def _check_decays(paramwise_cfg):
    model = nn.Sequential(nn.Sequential(_Block(), _Block()))
    decays = _decays(model, paramwise_cfg)
    for name, p in model.named_parameters():
        expected = 0.0 if '.srm.' in name else 1e-4
        assert decays[id(p)] == pytest.approx(expected), name


def test_srm_weight_decay_snippet():
    # the snippet of the docstring and the config: cfc and the BN train without weight decay
    _check_decays(dict(custom_keys={'.srm.': dict(decay_mult=0.)}))


@pytest.mark.skipif(not has_module('mmdet'), reason='the config inherits mmdet\'s')
def test_srm_config_weight_decay():
    from mmengine.config import Config
    cfg = Config.fromfile(CONFIG)
    assert cfg.model.backbone.plugins[0]['cfg']['type'] == 'mmattn.SRM'
    _check_decays(cfg.optim_wrapper.paramwise_cfg.to_dict())
