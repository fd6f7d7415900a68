"""tools/visualize_attention.py and the maps each class declares (mmattn.visualization).

The maps are checked against the modules: each map is computed here a second way, from
the module's weights written out in float64 (the full HW x HW matrix where the class only
computes one row), or from the module's own output (a gate g must give out = x * g), so a
wrong map fails. The tool is run on a toy image with the toy detector (SE), a detector with
CBAM and Non-local blocks (random weights through a checkpoint), and the toy CCNet.
"""
import json
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mmattn  # noqa: F401
from mmattn.models.channel import (CSE, ECA, GSoP, SCSE, SE, SPA, SRM, SSE, FcaNet,
                                   GatherExcite)
from mmattn.models.context import (AFNBlock, APNBlock, CrissCross, DANetPAM, DoubleAttention,
                                   GlobalContext, NonLocal, ObjectContext, RGA, SpatialIAU)
from mmattn.models.factory import attention_classes
from mmattn.models.spatial import (BAM, CBAM, CoordAttention, ResidualAttention, SGE, SimAM,
                                   SelectiveKernel, TripletAttention)
from mmattn.registry import MODELS
from mmattn.visualization import attention_maps as am
from tests.helpers import (assert_close, has_module, load_tool, randomize_, requires_mmdet,
                           requires_mmseg)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SE_CONFIG = osp.join(ROOT, 'configs', 'toy', 'faster_rcnn_se_r50_toy-coco.py')
PLAIN_CONFIG = osp.join(ROOT, 'configs', 'toy', 'faster_rcnn_r50_toy-coco.py')
CBAM_NL_CONFIG = osp.join(ROOT, 'configs', 'toy', 'faster_rcnn_cbam-nonlocal_r50_toy-coco.py')
CCNET_CONFIG = osp.join(ROOT, 'configs', 'toy', 'ccnet_r18-d8_toy-cityscapes.py')
C, H, W = 16, 7, 9
QUERY = (0.3, 0.7)  # as a fraction of the height and width: cell (2, 6) of a 7 x 9 map


tool = load_tool('visualize_attention.py')


def make(cls, seed=0, **kwargs):
    return randomize_(cls(C, **kwargs), seed=seed).double().eval()


def rand(*shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


def record(module, *inputs, query=QUERY):
    """Run the module under the recorder; returns its maps and its output."""
    with am.AttentionRecorder(module, am.QueryPoint(*query)) as rec, torch.no_grad():
        out = module(*inputs)
    assert len(rec.records) == 1, rec.records
    assert rec.records[0].maps is not None, rec.records[0].reason
    return rec.records[0].maps, out


def bn_eval(bn, x):
    shape = (1, -1) + (1, ) * (x.dim() - 2)
    return ((x - bn.running_mean.view(shape)) / (bn.running_var.view(shape) + bn.eps).sqrt()
            * bn.weight.view(shape) + bn.bias.view(shape))


def conv1x1(conv, x):
    return F.conv2d(x, conv.weight, conv.bias)


# -- coverage ---------------------------------------------------------------------------------
def test_every_registered_class_is_drawn_or_reported():
    from mmattn.models.factory import draws_maps
    assert am.uncovered_classes() == []
    for name, cls in attention_classes().items():
        # maps, or a reason for having none: not both
        assert draws_maps(cls) != bool(cls.no_maps), name
        if cls.no_maps:
            assert len(cls.no_maps) > 20, name
        else:
            assert am.maps_caption(cls), name


def test_a_new_module_without_maps_is_reported(monkeypatch):
    from mmattn.models import BaseAttention

    class NewGate(BaseAttention):
        """x * sigmoid(x), declaring nothing for the tools."""

        def forward(self, x):
            return x * torch.sigmoid(x)

    monkeypatch.setitem(MODELS._module_dict, 'NewGate', NewGate)
    assert am.uncovered_classes() == ['NewGate']
    m = NewGate(C).eval()
    with am.AttentionRecorder(m) as rec, torch.no_grad():
        m(torch.randn(1, C, H, W))
    (r, ) = rec.records
    assert r.maps is None and 'NewGate declares no attention maps' in r.reason
    # the reason says what to add
    assert all(word in r.reason for word in ('channel_gates', 'spatial_gates',
                                             'attention_maps()', 'no_maps'))


def test_every_class_and_variant_gives_maps_of_its_input_size():
    for name, cls in attention_classes().items():
        for kw in [{}] + list(cls.variants.values()):
            m = randomize_(cls(C, **kw), seed=3).eval()
            inputs = cls.example_inputs(C, (1, C, H, W))
            with am.AttentionRecorder(m) as rec, torch.no_grad():
                m(*inputs)
            (r, ) = rec.records
            if cls.no_maps or (cls is GlobalContext and m.pooling_type == 'avg'):
                assert r.maps is None and r.reason, (name, kw)
                continue
            assert r.maps, (name, kw, r.reason)
            for t in list(r.maps.spatial.values()) + list(r.maps.query.values()):
                assert t.dim() == 2 and torch.isfinite(t).all(), (name, kw)
            for t in r.maps.channel.values():
                assert t.shape == (C, ) and torch.isfinite(t).all(), (name, kw)


# -- gates: out = x * gate ----------------------------------------------------------------------
SPATIAL_MEAN_GATES = [
    (SimAM, {}), (SGE, dict(groups=4)), (TripletAttention, {}),
    (TripletAttention, dict(no_spatial=True)), (CoordAttention, {}), (BAM, dict(reduction=4)),
    (BAM, dict(reduction=4, fusion='sum')), (SSE, {}),
]
CHANNEL_GATES = [
    (SE, dict(reduction=4)), (ECA, {}), (FcaNet, dict(reduction=4)), (CSE, {}),
    (SPA, dict(reduction=4)), (SRM, {}), (GSoP, dict(att_dim=8)),
    (GatherExcite, dict(variant='theta-plus', reduction=4)),
    (GlobalContext, dict(fusion_types=('channel_mul', ))),
]


@pytest.mark.parametrize('cls,kw', SPATIAL_MEAN_GATES,
                         ids=[f'{c.__name__}{k}' for c, k in SPATIAL_MEAN_GATES])
def test_spatial_gate_is_the_output_over_the_input(cls, kw):
    m = make(cls, seed=1, **kw)  # seed 0 gives BAM's small spatial branch a dead ReLU
    x = rand(1, C, H, W)
    maps, out = record(m, x)
    ratio = (out / x)[0]  # the gate of every element
    (name, ) = [n for n in maps.spatial if 'mean' in n or n == 'spatial gate']
    assert_close(maps.spatial[name], ratio.mean(0), rtol=1e-9, atol=1e-12)
    assert maps.spatial[name].std() > 1e-4  # a map with something to see


def test_gather_excite_extent_gate_is_the_output_over_the_input():
    m = make(GatherExcite, variant='theta', extent=2)
    x = rand(1, C, H, W)
    maps, out = record(m, x)
    (coarse, ) = maps.spatial.values()
    assert coarse.shape == (4, 5)
    fine = F.interpolate(coarse[None, None], size=(H, W), mode='nearest')[0, 0]
    assert_close(fine, (out / x)[0].mean(0), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize('cls,kw', CHANNEL_GATES, ids=[c.__name__ for c, _ in CHANNEL_GATES])
def test_channel_gate_is_the_output_over_the_input(cls, kw):
    m = make(cls, **kw)
    x = rand(1, C, H, W)
    maps, out = record(m, x)
    (name, ) = [n for n in maps.channel]
    ratio = (out / x)[0]
    assert_close(ratio, maps.channel[name][:, None, None].expand_as(ratio), rtol=1e-9,
                 atol=1e-12)
    assert maps.channel[name].std() > 1e-4


def test_se_channel_weights_from_the_weights():
    m = make(SE, reduction=4)
    x = rand(1, C, H, W)
    maps, _ = record(m, x)
    w1, w2 = m.fc1.weight.flatten(1), m.fc2.weight.flatten(1)
    expected = torch.sigmoid(w2 @ torch.relu(w1 @ x[0].mean((1, 2)) + m.fc1.bias) + m.fc2.bias)
    assert_close(maps.channel['channel gate'], expected)


def test_cbam_gates_from_the_weights():
    m = make(CBAM, reduction=4)
    x = rand(1, C, H, W)
    maps, out = record(m, x)

    def mlp(v):
        return F.linear(torch.relu(F.linear(v, m.fc1.weight, m.fc1.bias)), m.fc2.weight,
                        m.fc2.bias)

    channel = torch.sigmoid(mlp(x.mean((2, 3))) + mlp(x.amax((2, 3))))
    xc = x * channel[:, :, None, None]
    pooled = torch.cat([xc.amax(1, keepdim=True), xc.mean(1, keepdim=True)], 1)
    spatial = torch.sigmoid(bn_eval(m.spatial_gate.bn,
                                    F.conv2d(pooled, m.spatial_gate.conv.weight, padding=3)))
    assert_close(out, xc * spatial)  # the formula written here is the module's
    assert_close(maps.channel['channel gate'], channel[0])
    assert_close(maps.spatial['spatial gate'], spatial[0, 0])


def test_rga_gates_are_the_output_over_the_input():
    m = make(RGA, spatial_size=(4, 3))
    x = rand(1, C, H, W)
    maps, out = record(m, x)
    s, c = maps.spatial['spatial gate'], maps.channel['channel gate']
    assert_close((out / x)[0], c[:, None, None] * s[None], rtol=1e-9, atol=1e-12)


def test_scse_parts_are_its_submodules_gates():
    m = make(SCSE)
    x = rand(1, C, H, W)
    maps, _ = record(m, x)
    assert_close(maps.spatial['sSE spatial gate'], (m.sSE(x) / x)[0, 0])
    assert_close(maps.channel['cSE channel gate'], (m.cSE(x) / x)[0, :, 0, 0])


def test_selective_kernel_branch_weights_mix_the_branches():
    m = make(SelectiveKernel, groups=4, min_channels=4)
    x = rand(1, C, H, W)
    maps, out = record(m, x)
    branches = [b(x) for b in m.branches]
    weights = list(maps.channel.values())
    assert_close(sum(weights), torch.ones(C, dtype=torch.float64))
    assert_close(out, sum(w[None, :, None, None] * b for w, b in zip(weights, branches)))


def test_global_context_weights_pool_the_context():
    m = make(GlobalContext, ratio=1 / 4)
    x = rand(1, C, H, W)
    maps, _ = record(m, x)
    w = maps.spatial['context weights (softmax over positions)']
    assert_close(w.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert_close((x[0] * w).sum((1, 2)), m.spatial_pool(x).flatten())


def test_residual_attention_and_siau_masks():
    m = make(ResidualAttention, num_downsamples=2)
    x = rand(1, C, H, W)
    maps, _ = record(m, x)
    with torch.no_grad():
        mask = m.soft_mask(m.pre(x))
    assert_close(maps.spatial['soft mask M, mean over channels'], mask[0].mean(0))
    m = make(SpatialIAU)
    maps, _ = record(m, x)
    with torch.no_grad():
        _, parts = m(x, return_parts=True)
    assert_close(torch.stack(list(maps.spatial.values())), parts[0])


# -- one query pixel's attention ----------------------------------------------------------------
def query_cell(h, w):
    return int(QUERY[0] * h), int(QUERY[1] * w)


@pytest.mark.parametrize('mode', ['embedded_gaussian', 'gaussian', 'dot_product',
                                  'concatenation'])
@pytest.mark.parametrize('sub_sample', [False, True])
def test_non_local_row_is_the_row_of_the_full_matrix(mode, sub_sample):
    m = make(NonLocal, mode=mode, sub_sample=sub_sample, reduction=2)
    x = rand(1, C, H, W)
    maps, out = record(m, x)
    src = F.max_pool2d(x, 2, 2, ceil_mode=True) if sub_sample else x
    g = conv1x1(m.g, src)[0].flatten(1).t()  # (M, C')
    if mode == 'gaussian':
        q, k = x[0].flatten(1).t(), src[0].flatten(1).t()
    else:
        q, k = conv1x1(m.theta, x)[0].flatten(1).t(), conv1x1(m.phi, src)[0].flatten(1).t()
    n_keys = k.shape[0]
    if mode == 'embedded_gaussian':
        full = (q @ k.t() / q.shape[1]**0.5).softmax(-1)
    elif mode == 'gaussian':
        full = (q @ k.t()).softmax(-1)
    elif mode == 'dot_product':
        full = q @ k.t() / n_keys
    else:
        w = m.concat_project.weight.flatten()
        c = q.shape[1]
        full = torch.relu((q @ w[:c])[:, None] + (k @ w[c:])[None, :]) / n_keys
    y = (full @ g).t().reshape(1, -1, H, W)
    assert_close(out, x + bn_eval(m.norm, conv1x1(m.conv_out, y)))
    qy, qx = query_cell(H, W)
    (row, ) = maps.query.values()
    assert row.shape == src.shape[2:]
    assert_close(row.flatten(), full[qy * W + qx])


def dense_cross_attention(q, k):
    """The criss-cross attention as a full (HW, HW) matrix: softmax over the pixels of each
    pixel's row and column (itself once)."""
    h, w = q.shape[-2:]
    energy = q[0].flatten(1).t() @ k[0].flatten(1)
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    ys, xs = ys.flatten(), xs.flatten()
    cross = (ys[:, None] == ys[None, :]) | (xs[:, None] == xs[None, :])
    return energy.masked_fill(~cross, float('-inf')).softmax(-1)


def test_criss_cross_rows_and_their_product():
    m = make(CrissCross, reduction=4, recurrence=2)
    x = rand(1, C, H, W)
    maps, out = record(m, x)
    mats, cur = [], x
    for _ in range(2):
        a = dense_cross_attention(conv1x1(m.query_conv, cur), conv1x1(m.key_conv, cur))
        v = conv1x1(m.value_conv, cur)[0].flatten(1)
        cur = m.gamma * (v @ a.t()).reshape(1, C, H, W) + cur
        mats.append(a)
    assert_close(out, cur)  # the dense formula here is the module's
    qy, qx = query_cell(H, W)
    p = qy * W + qx
    assert_close(maps.query['pass 1: row and column'].flatten(), mats[0][p])
    assert_close(maps.query['pass 2: row and column'].flatten(), mats[1][p])
    assert_close(maps.query['passes 1-2 combined'].flatten(), mats[1][p] @ mats[0])
    # the first pass reaches only the query's row and column, two passes the whole map
    assert (maps.query['pass 1: row and column'] > 0).sum() == H + W - 1
    assert (maps.query['passes 1-2 combined'] > 0).all()


def test_pam_row_is_the_row_of_the_full_matrix():
    m = make(DANetPAM, reduction=4)
    x = rand(1, C, H, W)
    maps, out = record(m, x)
    q, k = conv1x1(m.query_conv, x)[0].flatten(1), conv1x1(m.key_conv, x)[0].flatten(1)
    full = (q.t() @ k).softmax(-1)
    v = conv1x1(m.value_conv, x)[0].flatten(1)
    assert_close(out, m.gamma * (v @ full.t()).reshape(1, C, H, W) + x)
    qy, qx = query_cell(H, W)
    assert_close(maps.query['attention of the query pixel'].flatten(), full[qy * W + qx])


def test_query_moves_the_map():
    m = make(DANetPAM, reduction=4)
    x = rand(1, C, H, W)
    a, _ = record(m, x, query=(0.1, 0.1))
    b, _ = record(m, x, query=(0.9, 0.9))
    assert (a.query['attention of the query pixel']
            - b.query['attention of the query pixel']).abs().max() > 1e-3


def test_double_attention_row_gives_the_query_pixels_output():
    m = make(DoubleAttention)
    x = rand(1, C, H, W)
    maps, out = record(m, x)
    row = maps.query['attention of the query pixel'].flatten()
    qy, qx = query_cell(H, W)
    z = conv1x1(m.conv_a, x)[0].flatten(1) @ row  # (c_m,): what the pixel gathers
    assert_close(out[0, :, qy, qx], x[0, :, qy, qx] + m.conv_out.weight.flatten(1) @ z
                 + m.conv_out.bias)


def anchor_attention(q, keys, values, sizes, scale):
    """Softmax attention of one query over keys/values pooled by torch's adaptive pooling."""
    kp = torch.cat([F.adaptive_avg_pool2d(keys, s).flatten(2) for s in sizes], 2)[0]
    vp = torch.cat([F.adaptive_avg_pool2d(values, s).flatten(2) for s in sizes], 2)[0]
    return vp @ (q @ kp * scale).softmax(0)


def test_apnb_pixel_weights_give_the_anchor_attention():
    m = make(APNBlock, key_channels=8, value_channels=8, pool_sizes=(1, 2, 3))
    x = rand(1, C, H, W)
    maps, _ = record(m, x)
    eff = maps.query['attention of the query pixel (anchors spread)']
    assert (eff >= 0).all()
    assert_close(eff.sum(), torch.tensor(1.0, dtype=torch.float64))
    key, value = m.key_project(x), m.value_project(x)
    qy, qx = query_cell(H, W)
    expected = anchor_attention(key[0, :, qy, qx], key, value, (1, 2, 3), 8**-0.5)
    assert_close(value[0].flatten(1) @ eff.flatten(), expected)


def test_afnb_pixel_weights_lie_on_the_low_level_map():
    m = make(AFNBlock, low_in_channels=6, key_channels=8, value_channels=8,
             pool_sizes=(1, 2, 3))
    low, high = rand(1, 6, 5, 6, seed=2), rand(1, C, H, W)
    maps, _ = record(m, low, high)
    (eff, ) = maps.query.values()
    assert eff.shape == (5, 6)
    q = m.query_project(high)
    key, value = m.key_project(low), m.value_project(low)
    qy, qx = query_cell(H, W)
    expected = anchor_attention(q[0, :, qy, qx], key, value, (1, 2, 3), 8**-0.5)
    assert_close(value[0].flatten(1) @ eff.flatten(), expected)


def test_object_context_row_is_a_distribution_over_positions():
    m = make(ObjectContext, num_classes=3, mid_channels=8, key_channels=8)
    feats, logits = rand(1, C, H, W), rand(1, 3, H, W, seed=2) * 3
    maps, _ = record(m, feats, logits)
    (row, ) = maps.query.values()
    assert (row >= 0).all()
    assert_close(row.sum(), torch.tensor(1.0, dtype=torch.float64))
    # with one class only, the pixel's single region weighs 1: the row is that region's mask
    m1 = make(ObjectContext, num_classes=1, mid_channels=8, key_channels=8)
    maps, _ = record(m1, feats, logits[:, :1])
    assert_close(list(maps.query.values())[0].flatten(), logits[0, 0].flatten().softmax(0))


# -- drawing ------------------------------------------------------------------------------------
def test_frame_crops_the_padding_and_colorize_survives_constant_maps():
    from mmattn.visualization.drawing import Frame, colorize
    fmap = torch.zeros(4, 4, dtype=torch.float64)
    fmap[3] = 1.0  # the last row of cells covers only padding
    frame = Frame(input_hw=(32, 32), img_hw=(24, 32), display_hw=(12, 16))
    shown = frame.to_display(fmap, 'nearest')
    assert shown.shape == (12, 16) and shown.max() == 0
    rgb, vmin, vmax = colorize(np.full((5, 5), 0.3))
    assert vmin == vmax == 0.3 and rgb.dtype == np.uint8 and (rgb == rgb[0, 0]).all()


def test_near_constant_maps_are_not_stretched():
    from matplotlib import colormaps

    from mmattn.visualization.drawing import NEAR_CONSTANT, colorize, colour_scale
    rng = np.random.default_rng(0)
    # an untrained Non-local block's attention: uniform over 16 keys, float noise on top
    flat = 1 / 16 + rng.uniform(-1e-6, 1e-6, (6, 6))
    lo, hi, near = colour_scale(flat)
    assert near and lo == hi == pytest.approx(flat.mean(), rel=1e-12)
    rgb, vmin, vmax = colorize(flat, 'jet', (lo, hi))
    assert (vmin, vmax) == (flat.min(), flat.max())
    # one colour, the middle one: no stretched noise
    middle = (np.asarray(colormaps['jet'](0.5)[:3]) * 255).round()
    assert (rgb == middle).all()
    # just under the threshold it is still flat, just over it the map is stretched
    assert colour_scale(np.array([1.0, 1.0 + 0.99 * NEAR_CONSTANT]))[2] is True
    assert colour_scale(np.array([1.0, 1.0 + 1.01 * NEAR_CONSTANT]))[2] is False
    stretched, _, _ = colorize(flat, 'jet', colour_scale(flat, stretch=True)[:2])
    assert np.abs(stretched.astype(float) - middle).max() > 100
    # a map that varies by more than NEAR_CONSTANT of its mean keeps its full range
    varied = 0.5 + rng.uniform(-0.01, 0.01, (6, 6))
    assert colour_scale(varied) == (varied.min(), varied.max(), False)
    # a map around 0 has no relative scale: stretched as before
    assert colour_scale(rng.uniform(-1e-9, 1e-9, (3, 3)))[2] is False


@requires_mmdet
def test_panel_title_states_a_near_constant_range():
    from mmattn.visualization.drawing import TITLE_HEIGHT, PanelPainter
    image = np.full((40, 60, 3), 128, np.uint8)
    painter = PanelPainter()
    varied = painter.panel(image, np.linspace(0, 1, 2400).reshape(40, 60), 'a', 'b')
    flat = painter.panel(image, np.full((40, 60), 1 / 16) + np.linspace(0, 2e-6, 60), 'a', 'b')
    assert varied.shape == flat.shape == (40 + TITLE_HEIGHT, 60, 3)
    ((_, _, vmin, vmax), ) = painter.near_constant
    assert vmin == pytest.approx(1 / 16) and vmax == pytest.approx(1 / 16 + 2e-6)

    def red(strip):
        px = strip.reshape(-1, 3).astype(int)
        return ((px[:, 0] > 150) & (px[:, 1] < 100) & (px[:, 2] < 100)).sum()

    # the flat map's title says its range in red in place of the colour bar
    assert red(flat[:TITLE_HEIGHT]) > 20 and red(varied[:TITLE_HEIGHT]) == 0
    # the flat map's body is one colour blended on the grey image
    assert (flat[TITLE_HEIGHT:] == flat[TITLE_HEIGHT, 0]).all()
    assert varied[TITLE_HEIGHT:].reshape(-1, 3).std(axis=0).max() > 20


def test_query_point_lands_in_the_image_not_the_padding():
    # a 69 x 127 image resized to 70 x 128 and padded to 96 x 128 (the toy detector's input)
    q = tool.query_point((126, 68), (69, 127), (70, 128), (96, 128))
    assert q.index(3, 4) == (2, 3)  # stride 32: the last cell holding image rows is row 2
    q = tool.query_point((0, 0), (69, 127), (70, 128), (96, 128))
    assert q.index(96, 128) == (0, 0)


# -- the tool -----------------------------------------------------------------------------------
needs_toy = pytest.mark.skipif(not has_module('sklearn'),
                               reason='the toy image generator draws scikit-learn\'s digits')


@pytest.fixture(scope='module')
def toy_image(tmp_path_factory):
    gen = load_tool('dataset_converters', 'make_toy_coco.py')
    root = str(tmp_path_factory.mktemp('toy') / 'toy_coco')
    gen.generate(root, num_train=1, num_val=1)
    return osp.join(root, 'val2017', '000000000002.png')


def read_rgb(path):
    from PIL import Image
    with Image.open(path) as im:
        return np.asarray(im.convert('RGB'))


def run_tool(argv, capsys):
    rc = tool.main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def check_heatmaps(out_dir, index, image_path, alpha=0.5, panel_size=320):
    """Every heat-map picture: its grid of panels at the expected size, and every panel's
    image part coloured by a map that varies (not the bare image, not one colour)."""
    import mmcv

    from mmattn.visualization.drawing import (BANNER_HEIGHT, TITLE_HEIGHT, display_size,
                                              panel_shape)
    image = read_rgb(image_path)
    dh, dw = display_size(image.shape[:2], panel_size)
    shown = mmcv.imresize(image, (dw, dh), interpolation='bilinear').astype(np.float64)
    ph, pw = panel_shape(image.shape[:2], panel_size)
    for e in index['pictures']:
        if e['kind'] != 'heatmap':
            continue
        pic = read_rgb(osp.join(out_dir, e['file'])).astype(np.float64)
        # the banner of an untrained model's picture, then the panels
        assert e['banner'] == (0 if index['checkpoint'] else BANNER_HEIGHT)
        assert pic.shape == (e['banner'] + e['rows'] * ph, e['cols'] * pw, 3), e
        pic = pic[e['banner']:]
        assert e['rows'] * e['cols'] - e['cols'] < e['panels'] <= e['rows'] * e['cols']
        for i in range(e['panels']):
            r, c = divmod(i, e['cols'])
            body = pic[r * ph + TITLE_HEIGHT:(r + 1) * ph, c * pw:(c + 1) * pw]
            assert np.abs(body - shown).mean() > 10, (e['file'], r, c)
            heat = (body - (1 - alpha) * shown) / alpha
            if i in e['near_constant']:
                # one colour, but for the rounding and the query marker's few pixels
                off = np.abs(heat - np.median(heat, axis=(0, 1))).max(axis=-1) > 4
                assert off.mean() < 0.01, (e['file'], r, c)
            else:
                assert heat.std(axis=(0, 1)).max() > 8, (e['file'], r, c)


def check_channel_plots(out_dir, index):
    for e in index['pictures']:
        if e['kind'] != 'channels':
            continue
        pic = read_rgb(osp.join(out_dir, e['file']))
        assert pic.shape[:2] == (e['height'], e['width'])
        assert pic.std() > 10 and (pic < 128).mean() > 0.005  # lines and text on white


@requires_mmdet
@needs_toy
def test_tool_draws_the_se_detector(toy_image, tmp_path, capsys):
    out_dir = str(tmp_path / 'se')
    rc, out, err = run_tool([SE_CONFIG, toy_image, '--out-dir', out_dir], capsys)
    assert rc == 0, err
    with open(osp.join(out_dir, 'index.json')) as f:
        index = json.load(f)
    files = sorted(e['file'] for e in index['pictures'])
    assert files == [f'backbone_layer{i}_se_SE_channels.png' for i in range(1, 5)]
    assert [len(e['modules']) for e in index['pictures']] == [3, 4, 6, 3]
    check_channel_plots(out_dir, index)
    assert all(f in out for f in files) and index['not_drawn'] == []
    # no module here attends from pixel to pixel: no query pixel to speak of
    assert index['query'] is None and 'query' not in out
    assert 'note: no checkpoint given' in out and index['checkpoint'] is None


@requires_mmdet
@needs_toy
def test_tool_draws_cbam_and_non_local_from_a_checkpoint(toy_image, tmp_path, capsys):
    # random attention weights (CBAM's spatial BN starts at 0: a constant gate), saved as a
    # checkpoint the tool loads
    args = tool.parse_args([CBAM_NL_CONFIG, 'image.png'])
    cfg, scope = tool.load_cfg(args)
    model = tool.build_model(cfg, scope, None, 'cpu')
    for i, (_, module) in enumerate(am.find_attention_modules(model)):
        randomize_(module, seed=i)
    ckpt = str(tmp_path / 'random.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    out_dir = str(tmp_path / 'cbam_nl')
    rc, out, err = run_tool([CBAM_NL_CONFIG, ckpt, toy_image, '--out-dir', out_dir,
                             '--query', '20', '30'], capsys)
    assert rc == 0, err
    with open(osp.join(out_dir, 'index.json')) as f:
        index = json.load(f)
    files = {e['file']: e for e in index['pictures']}
    for i, blocks in enumerate((3, 4, 6, 3), 1):
        e = files[f'backbone_layer{i}_cbam_CBAM.png']
        # one map a block: the blocks side by side, four to a row
        assert (e['panels'], e['rows'], e['cols'], e['query']) == (
            blocks, (blocks + 3) // 4, min(blocks, 4), False)
        assert len(files[f'backbone_layer{i}_cbam_CBAM_channels.png']['modules']) == blocks
    for i in (2, 3):
        e = files[f'backbone_layer{i}_nonlocal_block_NonLocal.png']
        assert (e['panels'], e['rows'], e['cols'], e['query']) == (2, 1, 2, True)
        assert e['modules'] == [f'backbone.layer{i}.1.nonlocal_block',
                                f'backbone.layer{i}.3.nonlocal_block']
    assert len(files) == 10 and index['query'] == [20, 30]
    assert '(query pixel x=20, y=30)' in out and 'no checkpoint' not in out
    check_heatmaps(out_dir, index, toy_image)
    check_channel_plots(out_dir, index)


@requires_mmdet
@needs_toy
def test_tool_marks_an_untrained_model_and_its_flat_maps(toy_image, tmp_path, capsys):
    """No checkpoint: an untrained Non-local block attends uniformly (1/HW +- float noise),
    and CBAM's spatial gates start constant (their BN weight is 0). Neither is stretched into
    false structure, and every picture says the weights are untrained."""
    from mmattn.visualization.drawing import BANNER_HEIGHT, TITLE_HEIGHT, panel_shape
    out_dir = str(tmp_path / 'untrained')
    rc, out, err = run_tool([CBAM_NL_CONFIG, toy_image, '--out-dir', out_dir], capsys)
    assert rc == 0, err
    assert 'note: no checkpoint given: the pictures show the untrained initialisation' in out
    with open(osp.join(out_dir, 'index.json')) as f:
        index = json.load(f)
    heat = [e for e in index['pictures'] if e['kind'] == 'heatmap']
    assert len(heat) == 6 and index['checkpoint'] is None
    import mmcv

    from mmattn.visualization.drawing import display_size
    image = read_rgb(toy_image)
    ph, pw = panel_shape(image.shape[:2], 320)
    dh, dw = display_size(image.shape[:2], 320)
    shown = mmcv.imresize(image, (dw, dh), interpolation='bilinear').astype(np.float64)
    for e in heat:
        # every panel near-constant, and said so on stdout
        assert e['near_constant'] == list(range(e['panels'])), e
        assert e['banner'] == BANNER_HEIGHT, e
        assert f"{e['panels']} of {e['panels']} near-constant" in out
        pic = read_rgb(osp.join(out_dir, e['file'])).astype(np.float64)
        assert pic.shape == (BANNER_HEIGHT + e['rows'] * ph, e['cols'] * pw, 3)
        banner = pic[:BANNER_HEIGHT]
        assert ((banner[..., 0] > 150) & (banner[..., 1] < 100)).sum() > 20  # red text
        # the maps are not stretched: each panel's colours are nearly one colour
        for i in range(e['panels']):
            r, c = divmod(i, e['cols'])
            top = BANNER_HEIGHT + r * ph + TITLE_HEIGHT
            body = pic[top:top + ph - TITLE_HEIGHT, c * pw:(c + 1) * pw]
            colours = (body - 0.5 * shown) / 0.5  # the heat map's colours (alpha 0.5)
            off = np.abs(colours - np.median(colours, axis=(0, 1))).max(axis=-1) > 4
            # one colour, but for the rounding and the query marker's few pixels
            assert off.mean() < 0.01, (e['file'], i, off.mean())
    # with --stretch the same maps fill the colour range (the old behaviour)
    rc, out, err = run_tool([CBAM_NL_CONFIG, toy_image, '--out-dir', out_dir + '_s',
                             '--stretch'], capsys)
    assert rc == 0, err
    assert 'near-constant' not in out
    with open(osp.join(out_dir + '_s', 'index.json')) as f:
        assert all(not e.get('near_constant') for e in json.load(f)['pictures'])


@requires_mmseg
@needs_toy
def test_tool_draws_the_criss_cross_segmentor(toy_image, tmp_path, capsys):
    out_dir = str(tmp_path / 'cc')
    rc, out, err = run_tool([CCNET_CONFIG, toy_image, '--out-dir', out_dir], capsys)
    assert rc == 0, err
    with open(osp.join(out_dir, 'index.json')) as f:
        index = json.load(f)
    (e, ) = index['pictures']
    assert e['file'] == 'decode_head_cca_CrissCross.png'
    assert (e['panels'], e['rows'], e['cols'], e['query']) == (3, 1, 3, True)
    check_heatmaps(out_dir, index, toy_image)


@requires_mmdet
@needs_toy
def test_tool_bad_input(toy_image, tmp_path, capsys):
    out = ['--out-dir', str(tmp_path / 'bad')]
    cases = [
        ([str(tmp_path / 'none.py'), toy_image], 'no config file at'),
        ([SE_CONFIG, str(tmp_path / 'none.png')], 'no image file at'),
        ([SE_CONFIG, str(tmp_path / 'none.pth'), toy_image], 'no checkpoint file at'),
        ([SE_CONFIG, toy_image, '--query', '500', '3'], 'is outside the image'),
        ([SE_CONFIG, toy_image, '--query', '-1', '3'], 'expected 0 <= X <='),
        ([PLAIN_CONFIG, toy_image], 'holds no mmattn attention module'),
    ]
    text = tmp_path / 'text.png'
    text.write_text('not an image')
    cases.append(([SE_CONFIG, str(text)], 'cannot read'))
    wrong = str(tmp_path / 'wrong.pth')
    torch.save(dict(state_dict=dict(foo=torch.zeros(1))), wrong)
    cases.append(([SE_CONFIG, wrong, toy_image], 'holds none of the weights'))
    other = tmp_path / 'other.py'
    other.write_text("model = dict(type='Foo')\n")
    cases.append(([str(other), toy_image], "default_scope is None"))
    for argv, message in cases:
        rc, _, err = run_tool(argv + out, capsys)
        assert rc == 2 and 'visualize_attention' in err and message in err, (argv, err)
    with pytest.raises(SystemExit):
        tool.parse_args([SE_CONFIG, 'a', 'b', 'c'])
