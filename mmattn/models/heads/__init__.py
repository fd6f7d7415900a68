"""Decode heads: mmseg's DANet, CCNet, OCRNet and ANN heads built from mmattn's modules.

Each is a drop-in replacement of an mmseg 1.2.2 head, registered under its own name
(``type='mmattn.AttnDAHead'`` for ``'DAHead'``, ``AttnCCHead``, ``AttnOCRHead``,
``AttnANNHead``): the same constructor arguments, the same outputs and losses for the same
weights, and mmseg's checkpoints load. They need mmseg; without it (or if importing it fails)
the names stay registered and exported, and building one raises an ImportError that says why.
"""
from mmattn.registry import MODELS

__all__ = ['AttnDAHead', 'AttnCCHead', 'AttnOCRHead', 'AttnANNHead']


def _unavailable(name: str, error: Exception) -> type:
    """A registered placeholder that reports why ``name`` could not be built."""

    def __init__(self, *args, **kwargs):
        raise ImportError(f'mmattn.{name} needs mmsegmentation (mmseg), which could not be '
                          f'imported: {error}') from error

    cls = type(name, (), {'__init__': __init__, '__doc__': 'Unavailable: needs mmseg.',
                          '__module__': __name__})
    MODELS.register_module(name=name, module=cls, force=True)
    return cls


# Not only ImportError: a broken install (e.g. mmcv without its compiled ops) must not take the
# attention modules down.
try:
    from .ann_head import AttnANNHead
    from .cc_head import AttnCCHead
    from .da_head import AttnDAHead
    from .ocr_head import AttnOCRHead
except Exception as err:  # noqa: B902
    AttnDAHead, AttnCCHead, AttnOCRHead, AttnANNHead = (_unavailable(n, err) for n in __all__)
