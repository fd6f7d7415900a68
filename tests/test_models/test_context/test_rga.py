import pytest
import torch
import torch.nn.functional as F

from mmattn.models.context.rga import RGA
from tests.helpers import assert_close, randomize_
from tests.test_models.test_context.test_ann import check_layout_and_onnx


def bn_eval(x, bn):
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return (x - bn.running_mean[None, :, None, None]) * scale[None, :, None, None] \
        + bn.bias[None, :, None, None]


def cbr(x, seq, relu=True, offset=0):
    """conv1x1 (no bias) -> eval BN [-> ReLU] from seq[offset], seq[offset + 1]."""
    y = F.conv2d(x, seq[offset].weight)
    y = bn_eval(y, seq[offset + 1])
    return torch.relu(y) if relu else y


def gate_net(y, seq):
    return cbr(cbr(y, seq), seq, relu=False, offset=3)


def rga_reference(m, x):
    """The authors' RGA_Module.forward written out, relations materialised.

    On an input of another size than ``m.spatial_size``, the spatial branch's relation vectors
    (one entry per position) are average-pooled onto the grid with PyTorch's adaptive pooling,
    and the channel branch runs on x pooled to the grid.
    """
    b, c, h, w = x.shape
    gh, gw = m.spatial_size
    if m.use_spatial:
        theta = cbr(x, m.theta_spatial).reshape(b, -1, h * w)
        phi = cbr(x, m.phi_spatial).reshape(b, -1, h * w)
        gs = theta.transpose(1, 2) @ phi                     # Gs[i, j] = theta_i . phi_j
        gs_in = gs.transpose(1, 2)                           # channel j at pixel i: Gs[i, j]
        gs_out = gs                                          # channel j at pixel i: Gs[j, i]

        def to_grid(rel):                                    # (b, targets, pixels) -> grid
            per_pixel = rel.transpose(1, 2).reshape(b * h * w, 1, h, w)
            pooled = F.adaptive_avg_pool2d(per_pixel, (gh, gw))
            return pooled.reshape(b, h * w, gh * gw).transpose(1, 2).reshape(b, -1, h, w)

        joint = torch.cat([to_grid(gs_in), to_grid(gs_out)], 1)
        joint = cbr(joint, m.gg_spatial)
        g = cbr(x, m.gx_spatial).mean(1, keepdim=True)
        x = torch.sigmoid(gate_net(torch.cat([g, joint], 1), m.W_spatial)) * x
    if m.use_channel:
        xp = F.adaptive_avg_pool2d(x, (gh, gw))
        xc = xp.reshape(b, c, -1).permute(0, 2, 1).unsqueeze(-1)
        theta = cbr(xc, m.theta_channel).squeeze(-1).permute(0, 2, 1)
        phi = cbr(xc, m.phi_channel).squeeze(-1)
        gc = theta @ phi
        joint = torch.cat([gc.permute(0, 2, 1).unsqueeze(-1), gc.unsqueeze(-1)], 1)
        joint = cbr(joint, m.gg_channel)
        g = cbr(xc, m.gx_channel).mean(1, keepdim=True)
        wc = gate_net(torch.cat([g, joint], 1), m.W_channel).transpose(1, 2)
        x = torch.sigmoid(wc) * x
    return x


CASES = [dict(), dict(use_channel=False), dict(use_spatial=False)]


@pytest.mark.parametrize('kwargs', CASES, ids=['sc', 's', 'c'])
@pytest.mark.parametrize('grid,hw', [((6, 4), (6, 4)), ((4, 4), (9, 7)), ((5, 3), (2, 1)),
                                     ((8, 8), (16, 16))])
def test_rga_matches_formula(kwargs, grid, hw):
    m = randomize_(RGA(16, spatial_size=grid, cha_ratio=4, spa_ratio=2, down_ratio=2,
                       **kwargs), scale=0.3).double().eval()
    x = torch.randn(2, 16, *hw, dtype=torch.float64)
    assert_close(m(x), rga_reference(m, x))


def test_rga_at_native_size_is_the_authors_formula_without_pooling():
    # the relation vector at pixel i is exactly [Gs[i, :], Gs[:, i]], nothing pooled
    m = randomize_(RGA(8, spatial_size=(3, 5), cha_ratio=2, spa_ratio=3, down_ratio=2),
                   scale=0.3).double().eval()
    x = torch.randn(1, 8, 3, 5, dtype=torch.float64)
    theta = cbr(x, m.theta_spatial).flatten(2)[0]
    phi = cbr(x, m.phi_spatial).flatten(2)[0]
    gs = theta.t() @ phi
    i = 7
    rel = torch.cat([gs[i, :], gs[:, i]])
    pre = m.gg_spatial[0].weight.flatten(1) @ rel
    got = {}
    m.gg_spatial[1].register_forward_hook(lambda mod, inp, out: got.update(v=inp[0]))
    m(x)
    assert_close(got['v'].flatten(2)[0, :, i], pre)


def test_rga_layout_matches_authors_checkpoints():
    """Parameter names and shapes of the authors' RGA_Module(256, 64 * 32) (ResNet stage 1 of
    a 256x128 crop): their state dicts load into ours."""
    m = RGA(256, spatial_size=(64, 32))
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()
              if not k.endswith('num_batches_tracked')}
    c, s, ic, is_ = 256, 2048, 32, 256
    expected = {}

    def unit(name, cin, cout, idx=0):
        expected[f'{name}.{idx}.weight'] = (cout, cin, 1, 1)
        for k in ('weight', 'bias', 'running_mean', 'running_var'):
            expected[f'{name}.{idx + 1}.{k}'] = (cout, )

    for name, cin, cout in [('theta_spatial', c, ic), ('phi_spatial', c, ic),
                            ('gx_spatial', c, ic), ('gg_spatial', 2 * s, is_),
                            ('theta_channel', s, is_), ('phi_channel', s, is_),
                            ('gx_channel', s, is_), ('gg_channel', 2 * c, ic)]:
        unit(name, cin, cout)
    unit('W_spatial', 1 + is_, (1 + is_) // 8)
    unit('W_spatial', (1 + is_) // 8, 1, idx=3)
    unit('W_channel', 1 + ic, (1 + ic) // 8)
    unit('W_channel', (1 + ic) // 8, 1, idx=3)
    assert shapes == expected
    assert isinstance(m.W_spatial[2], torch.nn.ReLU) and len(m.W_spatial) == 5


def test_rga_initial_state_and_widths():
    m = RGA(2048)                      # defaults: the authors' stage-4 grid of a 256x128 crop
    assert m.spatial_size == (16, 8) and m.in_spatial == 128
    assert m.inter_channel == 256 and m.inter_spatial == 16
    assert m.W_spatial[0].out_channels == 17 // 8 and m.W_channel[0].out_channels == 257 // 8
    assert all(conv.bias is None for conv in m.modules() if isinstance(conv, torch.nn.Conv2d))
    # widths the authors' code would make 0 are clamped to 1
    small = RGA(1, spatial_size=(2, 2))
    assert small.inter_channel == 1 and small.inter_spatial == 1
    assert small.W_spatial[0].out_channels == 1 and small.W_channel[0].out_channels == 1
    assert RGA(8, spatial_size=5).spatial_size == (5, 5)
    assert not hasattr(RGA(8, use_spatial=False), 'theta_spatial')
    assert not hasattr(RGA(8, use_channel=False), 'theta_channel')
    with pytest.raises(ValueError, match='at least one'):
        RGA(8, use_spatial=False, use_channel=False)


def test_rga_spatial_gate_is_per_pixel_at_any_size():
    m = randomize_(RGA(8, spatial_size=(4, 4), use_channel=False, spa_ratio=2, down_ratio=2),
                   seed=2, scale=0.3).eval()
    x = torch.randn(1, 8, 20, 12, generator=torch.Generator().manual_seed(0))
    logits = m.spatial_logits(x)
    assert logits.shape == (1, 1, 20, 12)
    # A gate computed on the 4x4 grid and upsampled would take at most 16 values (nearest) or
    # vary smoothly; per-pixel logits take about as many values as there are pixels (240),
    # fewer only where a ReLU of this small random net is off.
    assert logits.flatten().unique().numel() > 100


@pytest.mark.parametrize('kwargs', CASES, ids=['sc', 's', 'c'])
def test_rga_channels_last_and_onnx(kwargs):
    check_layout_and_onnx(RGA, spatial_size=(6, 4), **kwargs)   # 12x10 input: pooled grid


@pytest.mark.parametrize('path', ['plain', 'regrouped'])
def test_rga_empty_batch(path):
    """No samples: an empty result (the spatial relations' reshape(n, -1, h, w) could not
    infer its -1 from 0 elements)."""
    from mmattn.models.layers import fast_paths
    x = torch.randn(0, 16, 4, 3, requires_grad=True)
    with fast_paths(path == 'regrouped'):
        y = RGA(16, spatial_size=(4, 3))(x)
    y.sum().backward()
    assert y.shape == x.shape and x.grad.shape == x.shape


def test_rga_hooks_on_the_relation_convs_run():
    """A hook on gg's conv sees every pass on every path: pruning's pre-hook recomputes the
    weight from weight_orig (the regrouped products read a stale weight, and a second training
    step raised), and a forward hook sees the relations."""
    import torch.nn.utils.prune as prune
    from mmattn.models.layers import fast_paths
    x = torch.randn(2, 16, 4, 3, dtype=torch.float64)
    results = {}
    for path in ('plain', 'regrouped'):
        torch.manual_seed(0)
        m = RGA(16, spatial_size=(4, 3)).double()
        prune.l1_unstructured(m.gg_spatial[0], 'weight', amount=0.5)
        seen = []
        m.gg_channel[0].register_forward_hook(lambda mod, i, o: seen.append(o.shape))
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        with fast_paths(path == 'regrouped'):
            for _ in range(2):
                opt.zero_grad()
                y = m(x)
                (y * y).sum().backward()
                opt.step()
        assert len(seen) == 2, path
        results[path] = y.detach()
    assert_close(results['regrouped'], results['plain'])
