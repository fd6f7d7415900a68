"""Helpers for running OpenMMLab configs with mmattn: checkpoints (safe loading, one-line
refusals, fit to the model), resuming, CPU distribution, data and pretrained-weight checks,
checks before a run writes anything, and the silencing of the pinned stack's deprecation
notices."""
from .checkpoint import (CheckpointFileError, CheckpointMismatchError,
                         allow_mmengine_checkpoints, check_checkpoint_fits, read_checkpoint)
from .data_check import DatasetNotFoundError, check_dataset_paths
from .dist import adapt_cfg_for_cpu_distributed, init_cpu_distributed
from .noise import silence_pinned_notices, silence_pinned_warnings
from .pretrained import (CONVERTER_FORMATS, CheckpointNotFoundError, LibraryUnavailableError,
                         PretrainedUnavailableError, check_library_available,
                         check_pretrained_available, check_pretrained_checkpoints,
                         check_remote_checkpoints)

__all__ = [
    'allow_mmengine_checkpoints', 'CheckpointFileError', 'CheckpointMismatchError',
    'check_checkpoint_fits', 'read_checkpoint', 'DatasetNotFoundError', 'check_dataset_paths',
    'adapt_cfg_for_cpu_distributed', 'init_cpu_distributed', 'CONVERTER_FORMATS',
    'CheckpointNotFoundError', 'PretrainedUnavailableError', 'check_pretrained_available',
    'check_pretrained_checkpoints', 'check_remote_checkpoints', 'silence_pinned_notices',
    'silence_pinned_warnings', 'LibraryUnavailableError', 'check_library_available'
]
