"""Pictures of attention maps: heat maps over the image, and plots of channel weights.

A heat-map picture is a grid of panels, one row per module instance (e.g. the blocks of a
stage) and one column per map. A panel is a title strip (:data:`TITLE_HEIGHT` pixels: the
instance, the map, and a colour bar from the map's minimum to its maximum) above the image
shown at :func:`display_size`, with the map resized to it, coloured by a matplotlib colormap
and alpha-blended. Text and markers are drawn with mmengine's ``Visualizer``; channel weights
are plotted with matplotlib.

A near-constant map (its range under :data:`NEAR_CONSTANT` of its mean, e.g. an untrained
Non-local block's uniform attention, 1/16 +- 1e-6) is not stretched over the colour range,
where float noise would look like structure: it is painted in the colormap's middle colour,
and its title says so and gives its range (``stretch`` draws it from its minimum to its
maximum all the same).
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

TITLE_HEIGHT = 46
BANNER_HEIGHT = 16  # the strip above a picture that says the weights are untrained
# a map whose range is below this fraction of its mean is drawn on a fixed scale
NEAR_CONSTANT = 1e-3
_FONT = 9
_BAR_MARGIN = 64  # room for the min / max values beside the colour bar


def display_size(ori_hw: Sequence[int], panel_size: int) -> Tuple[int, int]:
    """(h, w) of the image in a panel: its longer side scaled to ``panel_size``."""
    h, w = int(ori_hw[0]), int(ori_hw[1])
    s = panel_size / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def panel_shape(ori_hw: Sequence[int], panel_size: int) -> Tuple[int, int]:
    """(h, w) of one panel: the title strip above the image."""
    h, w = display_size(ori_hw, panel_size)
    return h + TITLE_HEIGHT, w


@dataclass
class Frame:
    """Where a feature map lies on the image.

    Feature maps cover the network input (``input_hw``), which holds the resized image
    (``img_hw``) in its top-left corner and padding elsewhere; the image is shown at
    ``display_hw``.
    """

    input_hw: Tuple[int, int]
    img_hw: Tuple[int, int]
    display_hw: Tuple[int, int]

    def to_display(self, fmap: torch.Tensor, mode: str = 'bilinear') -> np.ndarray:
        """(h, w) map -> (display h, display w) array over the image (padding cropped)."""
        t = fmap.detach().double().cpu()[None, None]
        kw = dict(align_corners=False) if mode == 'bilinear' else {}
        t = F.interpolate(t, size=tuple(self.input_hw), mode=mode, **kw)
        t = t[..., :self.img_hw[0], :self.img_hw[1]]
        t = F.interpolate(t, size=tuple(self.display_hw), mode=mode, **kw)
        return t[0, 0].numpy()


def colour_scale(values: np.ndarray, stretch: bool = False) -> Tuple[float, float, bool]:
    """The ends of a map's colour scale, and whether the map is near-constant.

    The scale runs from the map's minimum to its maximum, unless the range is below
    :data:`NEAR_CONSTANT` of the mean (and ``stretch`` is False): then both ends are the mean,
    which :func:`colorize` paints in the colormap's middle colour.
    """
    vmin, vmax = float(np.min(values)), float(np.max(values))
    mean = float(np.mean(values))
    if not stretch and vmax - vmin < NEAR_CONSTANT * abs(mean):
        return mean, mean, True
    return vmin, vmax, False


def colorize(values: np.ndarray, cmap: str = 'jet',
             scale: Optional[Tuple[float, float]] = None) -> Tuple[np.ndarray, float, float]:
    """Colour a 2-D array by ``cmap``: (RGB uint8, min, max of the array).

    The colours run over ``scale`` (low, high), by default from the array's minimum to its
    maximum. An empty scale (a constant map, or a near-constant one's, see
    :func:`colour_scale`) gives the colormap's middle colour everywhere.
    """
    from matplotlib import colormaps
    vmin, vmax = float(np.min(values)), float(np.max(values))
    lo, hi = scale if scale is not None else (vmin, vmax)
    span = hi - lo
    norm = ((values - lo) / span).clip(0, 1) if span > 1e-12 * max(1.0, abs(hi)) else \
        np.full_like(values, 0.5)
    rgb = colormaps[cmap](norm)[..., :3]
    return (rgb * 255).round().astype(np.uint8), vmin, vmax


def overlay(image: np.ndarray, heat_rgb: np.ndarray, alpha: float) -> np.ndarray:
    """Alpha-blend a coloured heat map onto an RGB image of the same size."""
    out = (1 - alpha) * image.astype(np.float64) + alpha * heat_rgb.astype(np.float64)
    return out.round().clip(0, 255).astype(np.uint8)


def format_range(vmin: float, vmax: float) -> Tuple[str, str]:
    """The two ends of a colour bar, with the digits that tell them apart (3 to 8)."""
    for digits in range(3, 9):
        lo, hi = f'{vmin:.{digits}g}', f'{vmax:.{digits}g}'
        if lo != hi:
            break
    return lo, hi


def _fit(text, width: int) -> str:
    """``text`` cut to ``width`` pixels; a list of texts, longest first: the first that fits
    (the last one cut)."""
    chars = max(4, int(width / 7))  # at most about 7 px a character at font size 9
    for option in ([text] if isinstance(text, str) else text):
        if len(option) <= chars:
            return option
    return option if len(option) <= chars else option[:chars - 1] + '\u2026'


class PanelPainter:
    """Draws panels with one mmengine ``Visualizer`` (text and markers)."""

    def __init__(self, cmap: str = 'jet', alpha: float = 0.5, stretch: bool = False):
        from mmengine.visualization import Visualizer
        self.cmap, self.alpha, self.stretch = cmap, alpha, stretch
        # (line1, line2, min, max) of every near-constant panel painted so far
        self.near_constant: List[Tuple[str, str, float, float]] = []
        # one named instance (mmengine keeps visualizers by name), reused for every panel
        self.vis = Visualizer.get_instance('mmattn_attention_maps')

    def title(self, width: int, line1: str, line2: str, vmin: float, vmax: float,
              note=None) -> np.ndarray:
        """The title strip: two lines, then the colour bar with its ends, or, for a
        near-constant map, ``note`` (its range; or a list of forms, longest first) in place
        of the bar."""
        from matplotlib import colormaps
        strip = np.full((TITLE_HEIGHT, width, 3), 255, np.uint8)
        if note is not None:
            self.vis.set_image(strip)
            self.vis.draw_texts(
                [_fit(line1, width), _fit(line2, width), _fit(note, width)],
                np.array([[3, 1], [3, 15], [3, 31]]), colors=['black', 'black', 'red'],
                font_sizes=_FONT, vertical_alignments='top', horizontal_alignments='left')
            return self.vis.get_image()
        x0, x1 = _BAR_MARGIN, max(_BAR_MARGIN + 8, width - _BAR_MARGIN)
        x1 = min(x1, width)
        ramp = colormaps[self.cmap](np.linspace(0, 1, max(1, x1 - x0)))[:, :3]
        strip[34:43, x0:x1] = (ramp * 255).round().astype(np.uint8)[None]
        self.vis.set_image(strip)
        self.vis.draw_texts(
            [_fit(line1, width), _fit(line2, width), *format_range(vmin, vmax)],
            np.array([[3, 1], [3, 15], [3, 32], [width - 3, 32]]), colors='black',
            font_sizes=_FONT, vertical_alignments='top',
            horizontal_alignments=['left', 'left', 'left', 'right'])
        return self.vis.get_image()

    def banner(self, width: int, text) -> np.ndarray:
        """A strip of :data:`BANNER_HEIGHT` pixels with one line of red text (or the first
        of a list of forms, longest first, that fits)."""
        self.vis.set_image(np.full((BANNER_HEIGHT, width, 3), 255, np.uint8))
        self.vis.draw_texts(_fit(text, width), np.array([3, 2]), colors='red',
                            font_sizes=_FONT, vertical_alignments='top')
        return self.vis.get_image()

    def panel(self, image: np.ndarray, heat: np.ndarray, line1: str, line2: str,
              marker_xy: Optional[Tuple[float, float]] = None) -> np.ndarray:
        """Title strip over the image blended with ``heat`` (same h, w as ``image``)."""
        lo, hi, flat = colour_scale(heat, self.stretch)
        rgb, vmin, vmax = colorize(heat, self.cmap, (lo, hi))
        note = None
        if flat:
            self.near_constant.append((line1, line2, vmin, vmax))
            a, b = format_range(vmin, vmax)
            # the range must show whole: shorter forms for narrow panels
            note = ([f'constant: {vmin:.6g}', f'flat {vmin:.6g}'] if vmin == vmax else
                    [f'near-constant: {a} to {b}, not stretched', f'near-constant: {a}..{b}',
                     f'flat {a}..{b}', f'{a}..{b}'])
        body = overlay(image, rgb, self.alpha)
        if marker_xy is not None:
            self.vis.set_image(body)
            self.vis.draw_points(np.array([marker_xy], dtype=np.float64), colors='white',
                                 marker='x', sizes=np.array([60]))
            self.vis.draw_points(np.array([marker_xy], dtype=np.float64), colors='black',
                                 marker='+', sizes=np.array([20]))
            body = self.vis.get_image()
        return np.concatenate([self.title(image.shape[1], line1, line2, lo, hi, note), body],
                              0)


def tile(rows: List[List[np.ndarray]]) -> np.ndarray:
    """Panels of equal size in a grid, row by row; short rows are padded with white."""
    ph, pw = rows[0][0].shape[:2]
    cols = max(len(r) for r in rows)
    blank = np.full((ph, pw, 3), 255, np.uint8)
    return np.concatenate(
        [np.concatenate(r + [blank] * (cols - len(r)), axis=1) for r in rows], axis=0)


def plot_channels(path: str, title: str,
                  series: Dict[str, List[Tuple[str, np.ndarray]]]) -> Tuple[int, int]:
    """One subplot per map name, one line per instance (label, weights by channel); saved as
    a PNG. Returns the picture's (h, w)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(series)
    fig = Figure(figsize=(8, 0.6 + 2.4 * n), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    for ax, (map_name, lines) in zip(axes, series.items()):
        for label, values in lines:
            values = np.asarray(values, dtype=np.float64)
            ax.plot(np.arange(len(values)), values, lw=0.9, label=label)
        ax.set_title(map_name, fontsize=9)
        ax.set_xlabel('channel', fontsize=8)
        ax.set_ylabel('weight', fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if len(lines) > 1:
            ax.legend(fontsize=6, ncol=min(4, len(lines)), loc='best')
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    w, h = fig.canvas.get_width_height()
    return h, w
