"""Necks: attention on the levels of a feature pyramid, composable with mmdet's/mmseg's necks."""
from .attn_neck import AttnNeck

__all__ = ['AttnNeck']
