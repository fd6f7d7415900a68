"""Helpers shared by the modules: reduced widths, norms that survive a batch of one, mmcv
ConvModules, autocast regions, and the errors a drop-in raises where the original asserts or
raises ``KeyError``."""
import contextlib
import warnings

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from torch import nn
from torch.nn.modules import module as _nn_module
from torch.nn.modules.batchnorm import _BatchNorm


class DropInError(ValueError, AssertionError):
    """A bad argument, refused by a drop-in replacement of an OpenMMLab class.

    Where mmdet's, mmseg's or mmcv's original checks an argument with a bare ``assert``
    (a plugin's ``stages`` length or ``position`` in ResNet, ``pooling_type`` and
    ``fusion_types`` in mmcv's ``ContextBlock``, the two ``in_channels`` of mmseg's
    ``ANNHead``), ours raises this: a ``ValueError`` with a message naming the module and the
    expected and actual values, which is also an ``AssertionError``, so code and tests written
    against the original (``pytest.raises(AssertionError)``, ``except AssertionError``) keep
    working when our class is swapped in.
    """


class MissingKeyError(DropInError, KeyError):
    """A config without a key its builder needs: ``type``, or a plugin spec's ``cfg``.

    mmcv's ``build_plugin_layer`` raises ``KeyError('the cfg dict must contain the key
    "type"')`` for a config without ``type``, and mmdet's and mmseg's ResNets read a plugin
    spec's ``cfg`` with ``spec['cfg']`` and pass it to that builder, so code written against
    them catches ``KeyError``. Ours checks the config before building, to name the builder and
    the keys it got, and raises this: a ``KeyError`` as the originals', and a
    :class:`DropInError` as our other refusals of a bad argument.
    """

    def __str__(self) -> str:
        # KeyError's str() is the repr of its argument (it expects a missing key, not a
        # sentence): a message would print in quotes, with its own quotes escaped
        return BaseException.__str__(self)


def reduced_channels(channels: int, reduction: float = 16, min_channels: int = 1,
                     divisor: int = 1) -> int:
    """The width of a bottleneck layer: ``channels // reduction``, as most authors compute it.

    Args:
        channels: the input width C.
        reduction: r in C / r.
        min_channels: the smallest width allowed (the authors' minimum, e.g. 8 for coordinate
            attention, 32 for SK); never below 1, so small inputs keep a working layer.
        divisor: if > 1, round to the nearest multiple (timm's ``make_divisible``), not below
            90% of the unrounded width. The authors' code of the modules here does not round,
            so the default is 1.
    """
    width = int(channels // reduction)
    if divisor > 1:
        rounded = max(divisor, int(width + divisor / 2) // divisor * divisor)
        width = rounded + divisor if rounded < 0.9 * width else rounded
    return max(int(min_channels), 1, width)


def norm_forward(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run a batch norm, using its running statistics when a batch holds one value a channel.

    BatchNorm after a global pooling sees one value per channel when the batch size is 1, and
    PyTorch raises in training mode. A run with batch size 1 (a common detection setting on a
    single GPU) should not crash: such a batch carries no statistics, so normalise it with the
    running ones and leave them untouched, as in evaluation.
    """
    if (isinstance(norm, _BatchNorm) and norm.training
            and x.numel() // x.shape[1] == 1 and norm.track_running_stats):
        return F.batch_norm(x, norm.running_mean, norm.running_var, norm.weight, norm.bias,
                            False, 0.0, norm.eps)
    return norm(x)


def build_conv_module(in_channels, out_channels, kernel_size=1, bias='auto', **kwargs):
    """An mmcv ``ConvModule``; a bias before a batch norm is accepted silently.

    The ANN and HRNet-OCR authors give some convs a bias before their BN. It is redundant (the
    norm removes any per-channel constant), but keeping it keeps their parameter lists, so it
    is an option; mmcv would warn once per construction.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='Unnecessary conv bias')
        return ConvModule(in_channels, out_channels, kernel_size, bias=bias, **kwargs)


def conv_module_forward(module: ConvModule, x: torch.Tensor) -> torch.Tensor:
    """Run a conv-norm-act ``ConvModule``, its norm through :func:`norm_forward`.

    The keys of a 1x1 map at batch size 1, or an object-region map of one class, give a batch
    norm one value per channel; PyTorch raises in training, a run should not.
    """
    x = module.conv(x)
    if module.with_norm:
        x = norm_forward(module.norm, x)
    if module.with_activation:
        x = module.activate(x)
    return x


def autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for ``device_type``; False on devices without autocast (the
    meta device, where torch raises if asked)."""
    return torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(
        device_type)


def autocast_off(device_type: str):
    """A region where autocast is off on ``device_type``, for sums over every position that
    must stay in float32; nothing to turn off on a device without autocast."""
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def has_forward_hooks(*modules: nn.Module) -> bool:
    """Whether calling these modules runs more than their functional op: forward (pre-)hooks
    on them (the attention-map tool's taps, pruning's and weight norm's weight updates) or
    global ones. A fast path that reads a module's weights instead of calling it must not run
    then."""
    if _nn_module._global_forward_hooks or _nn_module._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in modules)
