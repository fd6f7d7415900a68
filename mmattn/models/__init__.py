"""Models: attention modules grouped by family, and the backbones, necks and heads using them."""
from . import channel, context, spatial  # noqa: F401  (register the modules)
from . import backbones, heads, necks  # noqa: F401
from .base import BaseAttention
from .factory import attention_classes, build_attention, list_attention

__all__ = ['BaseAttention', 'attention_classes', 'build_attention', 'list_attention']
