"""mmattn: CNN attention modules as OpenMMLab plugins.

Importing the package registers every module in the ``mmattn`` registry scope.
"""
from . import models  # noqa: F401  (registers the modules)
from .models import build_attention, list_attention  # noqa: F401
from .registry import MODELS  # noqa: F401
from .version import __version__  # noqa: F401
