"""Spatial and hybrid attention: gates over positions, or over positions and channels together.

Every module file of this folder is imported here (a new one needs no edit), and the
attention modules it registers are exported by name (``from mmattn.models.spatial import CBAM``).
"""
from mmattn.models.factory import import_family

__all__ = import_family(__name__, __path__, globals())
