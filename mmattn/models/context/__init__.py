"""Self-attention and context modules: pixel-to-pixel and pixel-to-region relations.

Every module file of this folder is imported here (a new one needs no edit), and the
attention modules it registers are exported by name
(``from mmattn.models.context import NonLocal``).
"""
from mmattn.models.factory import import_family

__all__ = import_family(__name__, __path__, globals())
