"""Building blocks the attention modules name where they use them: the fast-path switch, the
CPU fast paths, the lean softmax and concatenation attention, and ONNX-safe pooling."""
from . import cpu_kernels
from .attention import attention_path, concat_attention, softmax_attention
from .fast_path import (capturing_graph, fast_paths, fast_paths_enabled, set_fast_paths,
                        use_fast_path)
from .pooling import adaptive_avg_pool2d, pool_matrix, pyramid_pool

__all__ = [
    'adaptive_avg_pool2d', 'attention_path', 'capturing_graph', 'concat_attention',
    'cpu_kernels', 'fast_paths', 'fast_paths_enabled', 'pool_matrix', 'pyramid_pool',
    'set_fast_paths', 'softmax_attention', 'use_fast_path'
]
