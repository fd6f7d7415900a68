"""Pictures of what the attention modules look at (see ``tools/visualize_attention.py``)."""
from .attention_maps import (CANNOT_DRAW, EXTRACTORS, AttentionMaps, AttentionRecorder,
                             Extractor, QueryPoint, Record, extract_maps,
                             find_attention_modules, uncovered_classes)

__all__ = [
    'CANNOT_DRAW', 'EXTRACTORS', 'AttentionMaps', 'AttentionRecorder', 'Extractor',
    'QueryPoint', 'Record', 'extract_maps', 'find_attention_modules', 'uncovered_classes'
]
