"""Helpers for running OpenMMLab configs with mmattn: checkpoints, CPU distribution, data and
pretrained-weight checks, and the silencing of the pinned stack's deprecation notices."""
from .checkpoint import allow_mmengine_checkpoints
from .data_check import DatasetNotFoundError, check_dataset_paths
from .dist import adapt_cfg_for_cpu_distributed, init_cpu_distributed
from .noise import silence_pinned_notices, silence_pinned_warnings
from .pretrained import (CONVERTER_FORMATS, CheckpointNotFoundError, LibraryUnavailableError,
                         PretrainedUnavailableError, check_library_available,
                         check_pretrained_available, check_pretrained_checkpoints)

__all__ = [
    'allow_mmengine_checkpoints', 'DatasetNotFoundError', 'check_dataset_paths',
    'adapt_cfg_for_cpu_distributed', 'init_cpu_distributed', 'CONVERTER_FORMATS',
    'CheckpointNotFoundError', 'PretrainedUnavailableError', 'check_pretrained_available',
    'check_pretrained_checkpoints', 'silence_pinned_notices', 'silence_pinned_warnings',
    'LibraryUnavailableError', 'check_library_available'
]
