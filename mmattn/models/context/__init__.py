"""Self-attention and context modules: pixel-to-pixel and pixel-to-region relations."""
from .afnb import AFNBlock
from .apnb import APNBlock
from .criss_cross import CrissCross
from .danet_cam import DANetCAM
from .danet_pam import DANetPAM
from .double_attention import DoubleAttention
from .global_context import GlobalContext
from .iau import ChannelIAU, SpatialIAU
from .non_local import NonLocal
from .ocr import ObjectContext
from .rga import RGA

__all__ = [
    'NonLocal', 'GlobalContext', 'DoubleAttention', 'DANetPAM', 'DANetCAM', 'CrissCross',
    'APNBlock', 'AFNBlock', 'ObjectContext', 'RGA', 'ChannelIAU', 'SpatialIAU'
]
