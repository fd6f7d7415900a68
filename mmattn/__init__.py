"""mmattn: CNN attention modules as OpenMMLab plugins.

Importing the package registers every module in the ``mmattn`` registry scope.
"""
from . import engine  # noqa: F401  (registers the hooks)
from . import models  # noqa: F401  (registers the modules)
from .models import build_attention, list_attention  # noqa: F401
from .registry import MODELS  # noqa: F401
from .utils.checkpoint import allow_mmengine_checkpoints
from .utils.noise import silence_pinned_warnings
from .version import __version__  # noqa: F401

# Configs import mmattn through custom_imports, also under mmdet's and mmseg's own tools: let
# their --resume and load_from read mmengine's checkpoints under torch's safe loader.
allow_mmengine_checkpoints()
# mmengine 0.10.7 on torch 2.13 and setuptools < 81 warns about its own use of deprecated APIs
# on every run (a Runner calls mmengine's is_installed, later than this import): drop exactly
# those warnings, by message and module (mmattn/utils/noise.py).
silence_pinned_warnings()
