"""Helpers of the context modules' tests: lean-vs-explicit comparison, the detection configs."""
import copy
import os

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mmattn.models.layers import attention


def run_and_grads(module, x, weight):
    """Forward, backward of ``(out * weight).sum()``; returns output, input grad, param grads."""
    x = x.clone().requires_grad_()
    module.zero_grad(set_to_none=True)
    out = module(x)
    (out * weight).sum().backward()
    grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
    return out.detach(), x.grad, grads


def train_with_frozen_norms(module):
    """Training mode (autograd through the attention), batch norms on running statistics.

    A batch norm in training mode normalises by the batch's statistics, whose backward
    subtracts nearly equal terms: its float32 gradients of the layers before it (Non-local's
    output conv) differ from float64 by ~1e-4 of their magnitude whatever the attention path,
    which would hide the comparison of the attention paths at 1e-5.
    """
    module.train()
    for m in module.modules():
        if isinstance(m, _BatchNorm):
            m.eval()
    return module


def assert_lean_matches_explicit(module, x, monkeypatch, block_elements=50, rtol=1e-5):
    """``module`` (lean) against a copy with ``lean=False``, with autograd, float32.

    ``block_elements`` is made small so that the blocked paths run with several blocks and a
    shorter last one. Each output and gradient is compared with ``rtol`` relative to its own
    largest magnitude, except gradients that are mathematically zero (a key bias under a
    softmax, whose rows of dS sum to 0): those must stay at float32 noise, below 1e-7 of the
    largest gradient of all.
    """
    monkeypatch.setattr(attention, 'BLOCK_ELEMENTS', block_elements)
    monkeypatch.setattr(attention, 'MIN_ROWS', 1)
    explicit = copy.deepcopy(module)
    explicit.lean = False
    train_with_frozen_norms(module)
    train_with_frozen_norms(explicit)
    # plugins: the output has the input's shape
    weight = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    y_lean, gx_lean, gp_lean = run_and_grads(module, x, weight)
    y_ref, gx_ref, gp_ref = run_and_grads(explicit, x, weight)
    assert set(gp_lean) == set(gp_ref)
    largest = max([gx_ref.abs().max()] + [g.abs().max() for g in gp_ref.values()])
    pairs = [('output', y_lean, y_ref), ('input gradient', gx_lean, gx_ref)]
    pairs += [(f'gradient of {n}', gp_lean[n], gp_ref[n]) for n in gp_ref]
    for what, got, expected in pairs:
        own = expected.abs().max()
        atol = rtol * own if own > 1e-6 * largest else 1e-7 * largest
        torch.testing.assert_close(got, expected, rtol=0, atol=atol,
                                   msg=lambda m, w=what: f'{w}: {m}')
    # inference (no autograd): the fused kernel or the blocked forward alone
    module.eval()
    explicit.eval()
    with torch.no_grad():
        y_lean, y_ref = module(x), explicit(x)
    torch.testing.assert_close(y_lean, y_ref, rtol=0, atol=rtol * y_ref.abs().max())


CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..',
                          'configs')


def build_config_backbone(abbr):
    """The backbone of ``configs/faster_rcnn_{abbr}_r50_coco.py`` (needs mmdet), built without
    its pretrained checkpoint (no download here)."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    register_all_modules()
    cfg = Config.fromfile(os.path.join(CONFIG_DIR, f'faster_rcnn_{abbr}_r50_coco.py'))
    backbone = cfg.model.backbone.copy()
    assert backbone.pop('init_cfg')['checkpoint'] == 'torchvision://resnet50'
    return MODELS.build(backbone)


def plugins_by_block(backbone, cls, position='after_conv3'):
    """{(stage, block): [modules of ``cls`` at ``position``]} over a ResNet's blocks; also checks
    that each has the block's width as in_channels."""
    found = {}
    layers = [getattr(backbone, name) for name in backbone.res_layers]
    for i, layer in enumerate(layers):
        for j, block in enumerate(layer):
            names = getattr(block, f'{position}_plugin_names', [])
            mods = [getattr(block, n) for n in names if isinstance(getattr(block, n), cls)]
            for m in mods:
                assert m.in_channels == block.planes * block.expansion
            if mods:
                found[(i, j)] = mods
    return found


def check_backbone_runs(backbone):
    backbone.train()
    outs = backbone(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [256, 512, 1024, 2048]
    assert all(torch.isfinite(o).all() for o in outs)
