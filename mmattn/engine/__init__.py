"""mmengine Runner hooks and loops of mmattn (registered in the ``mmattn`` scope of mmengine's
HOOKS and LOOPS)."""
from .hooks import AttentionCheckHook, ResumeStateHook
from .loops import EpochBasedTrainLoop, IterBasedTrainLoop

__all__ = ['AttentionCheckHook', 'ResumeStateHook', 'EpochBasedTrainLoop', 'IterBasedTrainLoop']
