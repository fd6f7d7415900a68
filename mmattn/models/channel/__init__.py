"""Channel attention: gates that rescale each channel of the input."""
from .eca import ECA
from .fcanet import FcaNet
from .gather_excite import GatherExcite
from .gsop import GSoP
from .scse import CSE, SCSE, SSE
from .se import SE
from .spa import SPA
from .srm import SRM

__all__ = ['CSE', 'ECA', 'FcaNet', 'GSoP', 'GatherExcite', 'SCSE', 'SE', 'SPA', 'SRM', 'SSE']
