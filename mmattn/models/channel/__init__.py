"""Channel attention: gates that rescale each channel of the input."""
from .se import SE

__all__ = ['SE']
