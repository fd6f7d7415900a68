"""Pictures of what the attention modules look at (see ``tools/visualize_attention.py``)."""
from .attention_maps import (AttentionMaps, AttentionRecorder, QueryPoint, Record, Tap,
                             extract_maps, find_attention_modules, first_image, maps_caption,
                             spread_over_pooling, taps_of, uncovered_classes)

__all__ = [
    'AttentionMaps', 'AttentionRecorder', 'QueryPoint', 'Record', 'Tap', 'extract_maps',
    'find_attention_modules', 'first_image', 'maps_caption', 'spread_over_pooling', 'taps_of',
    'uncovered_classes'
]
