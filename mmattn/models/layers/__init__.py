"""Building blocks the attention modules share."""
from .fast_path import (capturing_graph, fast_paths, fast_paths_enabled, set_fast_paths,
                        use_fast_path)

__all__ = ['capturing_graph', 'fast_paths', 'fast_paths_enabled', 'set_fast_paths',
           'use_fast_path']
