"""Helpers shared by the modules: reduced widths, norms that survive a batch of one, 1x1
conv-norm-activation units, mmcv ConvModules, autocast regions, and the errors a drop-in raises
where the original asserts or raises ``KeyError``."""
import contextlib
import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_activation_layer, build_norm_layer
from torch import nn
from torch.nn.modules import module as _nn_module
from torch.nn.modules.batchnorm import _BatchNorm

from mmattn.arguments import attention_being_built


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


class ReducedWidthWarning(UserWarning):
    """A reduction (or ratio) that gives a module's reduced layer fewer than one channel, or
    more channels than its input: the module is built, but not as its authors' formula
    intends. The message names the module, the argument, the width computed and the width
    used."""


def warn_reduced_width(arg: Optional[str], value, formula: str, width: int, used: int,
                       channels: int, of: str = 'in_channels', narrow_fix: str = '',
                       wide_fix: str = '', stacklevel: int = 1) -> None:
    """Warn (:class:`ReducedWidthWarning`) where a reduced width leaves the authors' formula:
    below one channel (``width < 1``) or above the input's width (``width > channels``).

    Args:
        arg: the argument that set the reduction (``'reduction'``); None where the authors fix
            it (``of`` is then named as the cause).
        value: its value.
        formula: how the width was computed, with the numbers (``'64 // 128'``).
        width: the formula's result.
        used: the width the module builds (at least 1).
        channels: the width that was reduced; ``of`` names it.
        narrow_fix, wide_fix: what to write instead, for a width below 1 or above
            ``channels``.
        stacklevel: the frame the warning points at: 1 is the caller, 2 the caller's caller.
    """
    owner = attention_being_built() or 'a module'
    given, where = f'{of}={channels}', ''
    if arg:
        given, where = f'{arg}={value!r}', f' ({of}={channels})'
    if width < 1:
        warnings.warn(
            f"{owner}: {given} leaves {formula} = {width} channels for its reduced layer"
            f"{where}, fewer than the minimum of 1 (the authors' formula has no "
            f'floor here); it is built {used} channel wide.'
            + (f' {narrow_fix}' if narrow_fix else ''), ReducedWidthWarning,
            stacklevel=stacklevel + 1)
    elif width > channels:
        warnings.warn(
            f'{owner}: {given} makes its reduced layer {formula} = {width} channels wide, '
            f'wider than {of}={channels}.' + (f' {wide_fix}' if wide_fix else ''),
            ReducedWidthWarning, stacklevel=stacklevel + 1)


def reduced_channels(channels: int, reduction: float = 16, min_channels: int = 1,
                     divisor: int = 1, *, arg: Optional[str] = 'reduction',
                     of: str = 'in_channels') -> int:
    """The width of a bottleneck layer: ``channels // reduction``, as most authors compute it.

    Args:
        channels: the input width C.
        reduction: r in C / r.
        min_channels: the authors' minimum width, where they have one (8 for coordinate
            attention, 32 for SK: ``max(C // r, min_channels)`` is their formula); 1 where
            they have none. Never below 1, so small inputs keep a working layer.
        divisor: if > 1, round to the nearest multiple (timm's ``make_divisible``), not below
            90% of the unrounded width. The authors' code of the modules here does not round,
            so the default is 1.
        arg: the module's argument that sets ``reduction``, for the warning; None where the
            authors fix the reduction.
        of: what ``channels`` is, for the warning.

    Where ``C // r`` is below 1 and the authors have no minimum (their code would build an
    empty layer), the layer is built 1 channel wide and a :class:`ReducedWidthWarning` names
    the module, the argument, the width computed and the width used; it also warns where
    ``r < 1`` makes the layer wider than its input (a ratio given for a reduction).
    """
    width = int(channels // reduction)
    if divisor > 1:
        rounded = max(divisor, int(width + divisor / 2) // divisor * divisor)
        width = rounded + divisor if rounded < 0.9 * width else rounded
    used = max(int(min_channels), 1, width)
    # an authors' minimum above 1 is their formula (max(C // r, L)): nothing to say then
    if (width < 1 and min_channels <= 1) or width > channels:
        formula = f'{channels} // {reduction!r}' + ('' if arg else ' (a fixed reduction)')
        warn_reduced_width(
            arg, reduction, formula, width, used, channels, of,
            narrow_fix=f'{arg} <= {channels} keeps at least one channel.' if arg else '',
            wide_fix=(f'{arg} divides the width: a ratio of {reduction!r} is '
                      f'{arg}={1 / reduction:g}.' if arg and 0 < reduction < 1 else ''),
            stacklevel=2)
    return used


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


def conv1x1_norm_act(in_channels: int, out_channels: int, norm_cfg: dict,
                     act_cfg: Optional[dict] = None, *, bias: bool) -> nn.Sequential:
    """1x1 conv -> norm [-> activation] as an ``nn.Sequential``, the layout of the authors'
    units in IAU and RGA, so that their state-dict keys (``<name>.0.weight``,
    ``<name>.1.running_mean``, ...) are ours. ``act_cfg=None`` leaves the activation out.
    Run it with :func:`sequential_forward`."""
    layers = [nn.Conv2d(in_channels, out_channels, 1, bias=bias),
              build_norm_layer(norm_cfg, out_channels)[1]]
    if act_cfg is not None:
        layers.append(build_activation_layer(act_cfg))
    return nn.Sequential(*layers)


def sequential_forward(seq: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Run an ``nn.Sequential`` layer by layer, its batch norms through :func:`norm_forward`
    (a batch of one vector per channel is normalised with the running statistics)."""
    for m in seq:
        x = norm_forward(m, x)
    return x


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
