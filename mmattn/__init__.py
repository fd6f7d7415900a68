"""mmattn: CNN attention modules as OpenMMLab plugins.

Importing the package registers every module in the ``mmattn`` registry scope, and applies one
compatibility fix, below; it changes nothing else (warning filters included).
"""
from . import engine  # noqa: F401  (registers the hooks)
from . import models  # noqa: F401  (registers the modules)
from .models import build_attention, list_attention  # noqa: F401
from .registry import MODELS  # noqa: F401
from .utils.checkpoint import allow_mmengine_checkpoints
from .version import __version__  # noqa: F401

# The one compatibility fix: under torch >= 2.6 the safe loader refuses mmengine's checkpoints,
# so mmdet's and mmseg's own --resume and load_from fail; configs import mmattn through
# custom_imports, so allow exactly the types mmengine writes (mmattn/utils/checkpoint.py).
allow_mmengine_checkpoints()
