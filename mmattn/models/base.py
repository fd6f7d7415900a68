"""The base class every attention module of mmattn derives from."""
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule

from mmattn.arguments import check_constructor


class BaseAttention(BaseModule):
    """An attention module that maps (N, C, H, W) to a tensor of the same shape.

    Subclasses follow one constructor convention: ``in_channels`` first (mmdet/mmseg backbones
    pass it by keyword), then, keyword-only, the module's own arguments, then
    ``norm_cfg``/``act_cfg`` where the module has norms or activations, and ``init_cfg`` last.
    Every subclass's constructor is checked (:mod:`mmattn.arguments`): an unknown keyword, an
    extra positional argument or a bool given for a number raises
    :class:`~mmattn.arguments.ArgumentError` naming the module and what it takes.

    Class attributes describe the module for ``python -m mmattn list``, the model zoo and the
    conformance suite:

    - ``_abbr_``: the plugin's attribute name inside a ResNet block (mmcv's convention).
    - ``paper`` / ``code``: the paper and the authors' repository.
    - ``is_plugin``: ``False`` for heads and fusion blocks whose output is not the input's shape
      (OCR, AFNB); those define :meth:`example_inputs`.
    - ``min_spatial``: the smallest H and W the module's formula is defined for.
    - ``variants``: named keyword sets selecting the module's other published forms (the
      paper's where it differs from the authors' code, other modes); the conformance suite
      runs every one of them.

    Where the module goes in a ResNet-50, read by the ResNet-50 classifier
    (:mod:`mmattn.models.backbones.classifier`), the model zoo and the parameter-count tests;
    a module declares one of the two:

    - ``placement``: :class:`~mmattn.models.backbones.AttnResNet` keyword arguments
      (``plugins=`` and/or ``stage_plugins=``) that place it as its authors do, e.g.
      ``dict(plugins=[dict(cfg=dict(type='mmattn.SE'), position='after_conv3')])``; where the
      authors give no ResNet-50, the placement of the module's detection config.
    - ``no_placement``: why it has none (a segmentation head's block, a two-input fusion).

    What ``tools/visualize_attention.py`` draws (:mod:`mmattn.visualization`); a module declares
    one of the three:

    - ``channel_gates`` / ``spatial_gates``: map name -> path of a submodule whose output is a
      gate the module multiplies its input by. A channel gate, (N, C, 1, 1), is drawn as one
      weight per channel; a spatial gate, (N, 1, H, W) or (N, C, H, W), as a heat map (averaged
      over the channels).
    - :meth:`attention_maps`, for maps that must be computed (one query pixel's attention, a
      gate built inside ``forward``); ``map_taps`` names the submodules whose calls it reads.
    - ``no_maps``: why there is nothing to draw over the image (e.g. a C x C attention between
      channels).

    ``maps_caption`` is the line the tool prints for the module's pictures (what they show).

    Zero or identity initialisations that the authors do outside the module (in their ResNet's
    init loop) are done by :meth:`reset_authors_init`, both at construction and after
    :meth:`init_weights` (which a backbone's ``init_cfg`` would otherwise override).
    """

    _abbr_ = 'attn'
    paper: str = ''
    code: str = ''
    is_plugin: bool = True
    min_spatial: int = 1
    variants: Dict[str, dict] = {}
    # where it goes in a ResNet-50
    placement: Optional[dict] = None
    no_placement: str = ''
    # what the attention-map tool draws
    channel_gates: Dict[str, str] = {}
    spatial_gates: Dict[str, str] = {}
    map_taps: Tuple[str, ...] = ()
    no_maps: str = ''
    maps_caption: str = ''

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        check_constructor(cls, attention=True)

    def __init__(self, in_channels: int, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f'{type(self).__name__}: in_channels must be a positive int, '
                             f'got {in_channels!r}')
        self.in_channels = in_channels

    # -- initialisation -------------------------------------------------------------------
    def reset_authors_init(self) -> None:
        """Apply the authors' special initialisation (zero gammas, zero-init last layers)."""

    def init_weights(self) -> None:
        super().init_weights()
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        if not any(c and c.get('type') == 'Pretrained' for c in cfgs):
            self.reset_authors_init()

    # -- input checks -----------------------------------------------------------------------
    def check_input(self, x: torch.Tensor, channels: Optional[int] = None,
                    name: str = 'x') -> None:
        """Raise a clear error for a non-4D input or a wrong channel count."""
        if torch.jit.is_tracing() or torch.compiler.is_compiling():
            return  # shapes are fixed while tracing; the checks would only add warnings
        expected = self.in_channels if channels is None else channels
        if not isinstance(x, torch.Tensor):
            raise TypeError(f'{type(self).__name__}: {name} must be a torch.Tensor, '
                            f'got {type(x).__name__}')
        if x.dim() != 4:
            raise ValueError(
                f'{type(self).__name__}(in_channels={self.in_channels}): expected {name} of '
                f'shape (N, C, H, W) with C={expected}, got a {x.dim()}-D tensor of shape '
                f'{tuple(x.shape)}')
        if x.shape[1] != expected:
            raise ValueError(
                f'{type(self).__name__}(in_channels={self.in_channels}): expected {name} with '
                f'{expected} channels, got {x.shape[1]} (shape {tuple(x.shape)}). Set '
                f'in_channels to the channel count of the features it is applied to.')
        if min(x.shape[2], x.shape[3]) < self.min_spatial:
            raise ValueError(
                f'{type(self).__name__}: {name} must be at least {self.min_spatial}x'
                f'{self.min_spatial} spatially, got {tuple(x.shape[2:])}')

    # -- attention maps ---------------------------------------------------------------------
    def attention_maps(self, inputs: tuple, taps: dict, query):
        """The maps of one call, for ``tools/visualize_attention.py``; override it where the
        maps must be computed rather than read from ``channel_gates`` / ``spatial_gates``.

        Args:
            inputs: the module's positional inputs in that call.
            taps: for each path of ``map_taps``, the list of that submodule's calls
                (:class:`mmattn.visualization.Tap`: its inputs and output).
            query: the query pixel (:class:`mmattn.visualization.QueryPoint`) of maps that
                show one pixel's attention.

        Returns:
            :class:`mmattn.visualization.AttentionMaps` of the first image of the batch, a
            string saying why this instance has nothing to draw, or ``None`` (this default):
            the tool then draws the declared gates.
        """
        return None

    # -- conformance ------------------------------------------------------------------------
    @classmethod
    def example_inputs(cls, in_channels: int, shape: Sequence[int],
                       **kwargs) -> Tuple[torch.Tensor, ...]:
        """Inputs for a forward pass; (N, C, H, W) noise for a plugin."""
        n, _, h, w = shape
        return (torch.randn(n, in_channels, h, w, **kwargs), )

    def extra_repr(self) -> str:
        return f'in_channels={self.in_channels}'


# a subclass without a constructor of its own is checked through this one
check_constructor(BaseAttention, attention=True)
