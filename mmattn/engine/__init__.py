"""mmengine Runner hooks and loops of mmattn (registered in the ``mmattn`` scope of mmengine's
HOOKS and LOOPS)."""
from .hooks import AttentionCheckHook, BroadcastBuffersHook, ResumeStateHook
from .loops import EpochBasedTrainLoop, IterBasedTrainLoop

__all__ = [
    'AttentionCheckHook', 'BroadcastBuffersHook', 'ResumeStateHook', 'EpochBasedTrainLoop',
    'IterBasedTrainLoop'
]
