"""SimAM, a parameter-free attention module.

Yang, Zhang, Li, Xie. "SimAM: A Simple, Parameter-Free Attention Module for Convolutional Neural
Networks", ICML 2021.
Authors' code: https://github.com/ZjjConan/SimAM (``networks/attentions/simam_module.py``).
"""
import torch
from torch.autograd.function import once_differentiable

from mmattn.registry import MODELS
from ..base import BaseAttention
from ..dispatch import register_rule, select
from ..ops import CompiledKernel, graph_capture

# Below this many elements the fused kernel's call overhead (guards, the autograd Function)
# outweighs the memory traffic it saves; tests lower it to reach the kernel with small inputs.
FUSED_MIN_ELEMENTS = 1 << 16


def authors_simam(x: torch.Tensor, e_lambda: float) -> torch.Tensor:
    """The authors' formula, op by op (n clamped to 1 at 1x1, see :class:`SimAM`)."""
    n = max(x.shape[2] * x.shape[3] - 1, 1)
    d = (x - x.mean(dim=(2, 3), keepdim=True)).pow(2)
    y = d / (4 * (d.sum(dim=(2, 3), keepdim=True) / n + e_lambda)) + 0.5
    return x * torch.sigmoid(y)


def _forward(x, e_lambda: float):
    """The output, and the per-channel mean and k = 1 / (4 (sum(d) / n + lambda)) that the
    backward needs (so that it saves nothing full-size but x).

    ``d * k`` stands for the authors' ``d / (4 (...))``: equal to rounding, and a per-element
    multiplication instead of a division, which was a tenth of the fused forward's time.
    """
    n = max(x.shape[2] * x.shape[3] - 1, 1)
    mu = x.mean(dim=(2, 3), keepdim=True)
    d = (x - mu).pow(2)
    k = 0.25 / (d.sum(dim=(2, 3), keepdim=True) / n + e_lambda)
    return x * torch.sigmoid(d * k + 0.5), mu, k


def _backward(x, gy, mu, k):
    """grad_x of ``x * sigmoid(k d + 1/2)``, d = (x - mu)^2, k = 1 / (4 (sum(d) / n + lambda)).

    With s = sigmoid(k d + 1/2), r = gy x s (1 - s), and the per-channel sums A = sum(r (x - mu))
    and B = sum(r d) over the N = H W positions (the mean's derivative is 1/N, sum(d)'s is
    2 (x - mu), k's is -8 k^2 (x - mu) / n):

        grad_x = gy s + (x - mu) (2 k r - 8 k^2 B / n) - 2 k A / N.

    Autograd's derivative of the op-by-op formula writes about ten full-size temporaries; this
    one is two fused loops over x and gy (the sums, then grad_x).
    """
    size = x.shape[2] * x.shape[3]
    n = max(size - 1, 1)
    xm = x - mu
    d = xm * xm
    s = torch.sigmoid(d * k + 0.5)
    r = gy * x * s * (1 - s)
    a = (r * xm).sum(dim=(2, 3), keepdim=True)
    b = (r * d).sum(dim=(2, 3), keepdim=True)
    return gy * s + xm * (2 * k * r - (8 / n) * k * k * b) - (2 / size) * k * a


_fused_forward = CompiledKernel(_forward, 'SimAM')
_fused_backward = CompiledKernel(_backward, 'SimAM')


class _SimAMFunction(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, e_lambda):
        out, mu, k = _fused_forward(x, e_lambda)
        ctx.save_for_backward(x, mu, k)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):
        x, mu, k = ctx.saved_tensors
        return _fused_backward(x, gy.contiguous(), mu, k), None


def _choose(x, **info):
    # read at call time: tests lower FUSED_MIN_ELEMENTS to reach the kernels
    return 'fused' if x.device.type == 'cpu' and x.numel() >= FUSED_MIN_ELEMENTS else 'plain'


register_rule(
    'simam', ('plain', 'fused'), _choose,
    reason='CPU (1 thread, float32, (8, 256, 56, 56), README): the fused kernels take 2.3 '
    'passes over the map forward and 6.2 forward + backward against 9.3 and 33.8 for the '
    "authors' ops, 5.46x faster; below 65,536 elements the call overhead outweighs that. Not "
    'measured on a GPU (compiled for the CPU; on an H200 SimAM ran the plain formula and was '
    'among the modules at 0.70-1.11x plain, issue #13): plain off the CPU.')


def fused_simam(x: torch.Tensor, e_lambda: float) -> torch.Tensor:
    """SimAM as two fused kernels (forward; backward), or the plain formula where those do not
    apply: on devices other than the CPU (rule ``'simam'``: the kernels were measured on the
    CPU only, 5.46x the authors' formula's speed for a training step there), below
    :data:`FUSED_MIN_ELEMENTS`, and while a graph is captured (tracing, ONNX export, an outer
    ``torch.compile``, which fuses the formula itself). Double backward
    (``create_graph=True``) needs the plain formula (``SimAM(..., fused=False)``)."""
    if (graph_capture() or not x.is_floating_point()
            or select('simam', x) == 'plain'):
        return authors_simam(x, e_lambda)
    if torch.is_grad_enabled() and x.requires_grad:
        return _SimAMFunction.apply(x, e_lambda)
    # no_grad: the graph the autograd Function's forward runs (with grad mode off) serves here
    # too, instead of a second compile for grad mode on (a frozen stage in training)
    with torch.no_grad():
        return _fused_forward(x, e_lambda)[0]


@MODELS.register_module()
class SimAM(BaseAttention):
    """SimAM: ``out = x * sigmoid(d / (4 * (sum(d) / n + lambda)) + 0.5)``.

    ``d = (x - mean)^2`` per channel, the mean and the sum taken over the H x W positions, and
    ``n = H * W - 1``. No parameters.

    At 1x1, ``n`` would be 0 and the authors' code returns NaN (0 / 0). Here ``n`` is clamped
    to 1: the single position equals its mean, so ``d = 0``, ``y = 0.5`` and the output is
    ``x * sigmoid(0.5)`` -- the value any position equal to its channel's mean gets at other
    sizes. Gradients stay finite.

    Args:
        in_channels: C (unused by the formula; kept for the plugin interface and input checks).
        e_lambda: lambda; 1e-4 is the module's default in the authors' code and paper (their
            ImageNet ResNet-50 and COCO detectors were trained with 0.1, see
            ``configs/faster_rcnn_simam_r50_coco.py``).
        fused: compute it with :func:`fused_simam` (on the CPU: one fused kernel for the
            forward and one for the backward, compiled by ``torch.compile`` on the first call,
            about 30 s, cached on disk for later runs). The authors' op-by-op formula reads and
            writes a full-size tensor per op: about 8 passes over the input forward and 28 for
            forward + backward, against under 3 and under 7 fused
            (``tools/benchmarks/module_speed.py``). ``False`` runs the authors' ops.
        init_cfg: mmengine init config.
    """

    _abbr_ = 'simam'
    paper = ('SimAM: A Simple, Parameter-Free Attention Module for Convolutional Neural '
             'Networks (Yang et al., ICML 2021)')
    code = 'https://github.com/ZjjConan/SimAM'
    # read by the tools (see BaseAttention): its ResNet-50 placement and attention maps
    # the authors' SimAM follows the 3x3 conv (before bn2); after_conv2 is the closest point
    placement = dict(plugins=[dict(cfg=dict(type='mmattn.SimAM'), position='after_conv2')])
    maps_caption = ('the energy gate sigmoid(d / (4 (var + lambda)) + 0.5), averaged over '
                    'channels')

    def attention_maps(self, inputs, taps, query):
        from mmattn.visualization import AttentionMaps, first_image
        # parameter-free: the gate is recomputed from the input
        x = inputs[0]
        n = max(x.shape[2] * x.shape[3] - 1, 1)
        d = (x - x.mean(dim=(2, 3), keepdim=True)).pow(2)
        gate = torch.sigmoid(d / (4 * (d.sum(dim=(2, 3), keepdim=True) / n + self.e_lambda))
                             + 0.5)
        return AttentionMaps(spatial={'gate, mean over channels': first_image(gate).mean(0)})

    def __init__(self, in_channels, e_lambda=1e-4, fused=True, init_cfg=None):
        super().__init__(in_channels, init_cfg=init_cfg)
        if e_lambda <= 0:
            raise ValueError(f'SimAM: e_lambda must be positive, got {e_lambda}')
        self.e_lambda = float(e_lambda)
        self.fused = fused

    def forward(self, x):
        self.check_input(x)
        if self.fused:
            return fused_simam(x, self.e_lambda)
        return authors_simam(x, self.e_lambda)

    def extra_repr(self):
        return f'in_channels={self.in_channels}, e_lambda={self.e_lambda}, fused={self.fused}'
