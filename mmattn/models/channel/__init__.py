"""Channel attention: gates that rescale each channel of the input.

Every module file of this folder is imported here (a new one needs no edit), and the
attention modules it registers are exported by name (``from mmattn.models.channel import SE``).
"""
from mmattn.models.factory import import_family

__all__ = import_family(__name__, __path__, globals())
