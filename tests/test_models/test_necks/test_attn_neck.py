"""mmattn.AttnNeck: an attention module on each level of a feature pyramid."""
import copy
import os.path as osp

import pytest
import torch
from torch import nn

from mmattn.models import attention_classes
from mmattn.registry import MODELS
from tests.helpers import assert_close, randomize_, requires_mmdet

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
IN_CHANNELS = [32, 64, 128]
SIZES = [(16, 12), (8, 6), (4, 3)]


def build_neck(attention, in_channels=IN_CHANNELS, **kwargs):
    return MODELS.build(dict(type='mmattn.AttnNeck', in_channels=in_channels,
                             attention=attention, **kwargs))


def pyramid(in_channels=IN_CHANNELS, sizes=SIZES, batch=2, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, c, h, w, generator=gen, dtype=dtype)
                 for c, (h, w) in zip(in_channels, sizes))


def plugin_names():
    return [name for name, cls in attention_classes().items() if cls.is_plugin]


@pytest.mark.parametrize('name', plugin_names())
def test_each_level_equals_its_own_module(name):
    """Level i of the output is module_i(level i) for a separately built module with copied
    weights: the neck adds nothing, drops nothing, and sends each level to its own module."""
    cls = attention_classes()[name]
    neck = build_neck(dict(type=f'mmattn.{name}')).double()
    randomize_(neck, seed=1)
    neck.eval()
    sizes = [(max(h, cls.min_spatial), max(w, cls.min_spatial)) for h, w in SIZES]
    inputs = pyramid(sizes=sizes)
    with torch.no_grad():
        outs = neck(inputs)
    assert isinstance(outs, tuple) and len(outs) == len(inputs)
    for i, (x, out) in enumerate(zip(inputs, outs)):
        ref = cls(in_channels=IN_CHANNELS[i]).double()
        ref.load_state_dict(neck.attentions[i].state_dict())
        ref.eval()
        with torch.no_grad():
            expected = ref(x)
        assert_close(out, expected, msg=f'{name}: level {i}')
        # the module really does something, so the comparison above could fail
        assert not torch.allclose(out, x), f'{name}: level {i} is the identity'


def test_levels_have_independent_weights():
    """Equal widths on every level still get one module each: no parameter is shared, and
    changing one level's weights changes that level's output only."""
    neck = build_neck(dict(type='mmattn.SE', reduction=4), in_channels=[16, 16, 16]).double()
    randomize_(neck, seed=2)
    params = [list(m.parameters()) for m in neck.attentions]
    ptrs = [{p.data_ptr() for p in ps} for ps in params]
    assert all(ptrs[i].isdisjoint(ptrs[j]) for i in range(3) for j in range(i + 1, 3))
    # state dict: one set of keys per level
    keys = neck.state_dict().keys()
    for i in range(3):
        assert f'attentions.{i}.fc1.weight' in keys

    x = torch.randn(2, 16, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        before = neck((x, x, x))
        # the same input gives three different outputs: the weights differ
        assert not torch.allclose(before[0], before[1])
        assert not torch.allclose(before[1], before[2])
        neck.attentions[1].fc2.bias.add_(1.0)
        after = neck((x, x, x))
    assert torch.equal(after[0], before[0]) and torch.equal(after[2], before[2])
    assert not torch.allclose(after[1], before[1])


def test_gradients_reach_every_level_only_through_its_module():
    neck = build_neck(dict(type='mmattn.SE', reduction=4)).double()
    randomize_(neck, seed=3)
    inputs = pyramid()
    outs = neck(inputs)
    outs[2].sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in neck.attentions[2].parameters())
    assert all(p.grad is None for m in neck.attentions[:2] for p in m.parameters())


def test_levels_selects_where_it_applies():
    neck = build_neck(dict(type='mmattn.SE', reduction=4), levels=[0, -1]).double()
    randomize_(neck, seed=4)
    assert neck.levels == (0, 2)
    assert isinstance(neck.attentions[1], nn.Identity)
    assert not any(k.startswith('attentions.1.') for k in neck.state_dict())
    inputs = pyramid()
    with torch.no_grad():
        outs = neck(inputs)
    assert outs[1] is inputs[1]
    assert not torch.allclose(outs[0], inputs[0]) and not torch.allclose(outs[2], inputs[2])


def test_one_config_per_level():
    neck = build_neck([dict(type='mmattn.SE', reduction=4), None,
                       dict(type='mmattn.CBAM', reduction=4)])
    assert type(neck.attentions[0]).__name__ == 'SE'
    assert isinstance(neck.attentions[1], nn.Identity)
    assert type(neck.attentions[2]).__name__ == 'CBAM'
    assert neck.attentions[2].in_channels == 128


def test_the_config_is_not_modified():
    cfg = dict(type='mmattn.SE', reduction=4)
    saved = copy.deepcopy(cfg)
    build_neck(cfg)
    assert cfg == saved


def test_modules_of_other_libraries():
    """Any registered module taking in_channels works, e.g. mmcv's GC block."""
    neck = build_neck(dict(type='ContextBlock', ratio=1 / 4))
    assert [type(m).__name__ for m in neck.attentions] == ['ContextBlock'] * 3
    assert [m.in_channels for m in neck.attentions] == IN_CHANNELS


@pytest.mark.parametrize('kwargs,match', [
    (dict(in_channels=[]), 'positive ints'),
    (dict(in_channels=[16, 0]), 'positive ints'),
    (dict(attention=[dict(type='mmattn.SE')]), 'one config'),
    (dict(levels=[3]), 'levels'),
    (dict(attention=[None, None, None]), 'no level'),
    (dict(attention=dict(type='mmattn.SE', in_channels=32)), 'leave in_channels out'),
    (dict(attention=dict(type='mmattn.Nope')), 'Nope'),
])
def test_bad_configs_say_what_to_fix(kwargs, match):
    cfg = dict(in_channels=IN_CHANNELS, attention=dict(type='mmattn.SE'))
    cfg.update(kwargs)
    with pytest.raises((ValueError, KeyError, TypeError), match=match):
        build_neck(**cfg)


def test_bad_inputs_say_what_to_fix():
    neck = build_neck(dict(type='mmattn.SE', reduction=4))
    x = pyramid(dtype=torch.float32)
    with pytest.raises(TypeError, match='tuple of feature maps'):
        neck(x[0])
    with pytest.raises(ValueError, match='got 2 levels'):
        neck(x[:2])
    with pytest.raises(ValueError, match='level 1 has shape'):
        neck((x[0], x[2], x[2]))


# -- inside mmdet's Faster R-CNN --------------------------------------------------------------

def faster_rcnn_cfg(neck):
    from mmengine.hub import get_config
    cfg = get_config('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    model = cfg.model
    model.backbone.init_cfg = None  # no download
    model.neck = neck
    return model


def det_inputs(size=96):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    img = torch.randint(0, 256, (3, size, size), generator=torch.Generator().manual_seed(0))
    sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                         scale_factor=(1.0, 1.0), pad_shape=(size, size)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[10., 12., 60., 70.]]),
                                       labels=torch.tensor([3]))
    return dict(inputs=[img.float()], data_samples=[sample])


FPN = dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5)
BEFORE = [dict(type='mmattn.AttnNeck', in_channels=[256, 512, 1024, 2048],
               attention=dict(type='mmattn.SE')), FPN]
AFTER = [FPN, dict(type='mmattn.AttnNeck', in_channels=[256] * 5,
                   attention=dict(type='mmattn.SE'))]


@requires_mmdet
@pytest.mark.parametrize('order', ['before_fpn', 'after_fpn'])
def test_in_faster_rcnn(order):
    from mmdet.registry import MODELS as DET_MODELS
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope

    register_all_modules(init_default_scope=False)
    neck = copy.deepcopy(BEFORE if order == 'before_fpn' else AFTER)
    with DefaultScope.overwrite_default_scope('mmdet'):
        det = DET_MODELS.build(faster_rcnn_cfg(neck))
    det.init_weights()
    attn = det.neck[0] if order == 'before_fpn' else det.neck[1]
    fpn = det.neck[1] if order == 'before_fpn' else det.neck[0]
    assert type(attn).__name__ == 'AttnNeck' and type(fpn).__name__ == 'FPN'
    randomize_(attn, seed=5)

    data = det.data_preprocessor(det_inputs(), training=True)
    det.eval()
    with torch.no_grad():
        feats = det.extract_feat(data['inputs'])
        stages = det.backbone(data['inputs'])
        expected = fpn(attn(stages)) if order == 'before_fpn' else attn(fpn(stages))
        plain = fpn(stages)
    assert len(feats) == 5
    for f, e, p in zip(feats, expected, plain):
        assert_close(f, e, rtol=1e-5, atol=1e-6)
    # the attention changed the features the heads see
    assert any(not torch.allclose(f, p) for f, p in zip(feats, plain))

    with torch.no_grad():
        results = det.predict(data['inputs'], data['data_samples'])
    assert len(results) == 1 and results[0].pred_instances.bboxes.shape[1] == 4

    det.train()
    losses = det.loss(data['inputs'], data['data_samples'])
    total = sum(v for k, v in losses.items() if 'loss' in k
                for v in (v if isinstance(v, (list, tuple)) else [v]))
    total.backward()
    assert all(p.grad is not None for p in attn.parameters())


@requires_mmdet
@pytest.mark.parametrize('config', ['faster_rcnn_r50_se-neck_coco.py',
                                    'faster_rcnn_r50_cbam-neck_coco.py',
                                    'faster_rcnn_r50_bam-neck_coco.py',
                                    'toy/faster_rcnn_r50_se-neck_toy-coco.py'])
def test_neck_configs_build(config):
    from mmdet.registry import MODELS as DET_MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmdet'):
        det = DET_MODELS.build(cfg.model)
    kinds = [type(m).__name__ for m in det.neck]
    assert sorted(kinds) == ['AttnNeck', 'FPN']
    attn = det.neck[kinds.index('AttnNeck')]
    fpn = det.neck[kinds.index('FPN')]
    # the widths chain: before the FPN the neck sees the backbone's stages, after it the
    # FPN's outputs
    if kinds[0] == 'AttnNeck':
        assert attn.in_channels == list(fpn.in_channels)
    else:
        assert attn.in_channels == [fpn.out_channels] * fpn.num_outs
    expected = {'se': 'SE', 'cbam': 'CBAM', 'bam': 'BAM'}[osp.basename(config).split('_')[3]
                                                        .split('-')[0]]
    assert {type(m).__name__ for m in attn.attentions} - {'Identity'} == {expected}
