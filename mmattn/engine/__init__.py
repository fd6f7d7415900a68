"""mmengine Runner hooks of mmattn (registered in the ``mmattn`` scope of mmengine's HOOKS)."""
from .hooks import AttentionCheckHook

__all__ = ['AttentionCheckHook']
