"""Spatial and hybrid attention: gates over positions, or over positions and channels together."""
from .bam import BAM
from .cbam import CBAM
from .coordatt import CoordAttention
from .resatt import ResidualAttention
from .sge import SGE
from .simam import SimAM
from .sk import SelectiveKernel
from .triplet import TripletAttention

__all__ = [
    'BAM', 'CBAM', 'CoordAttention', 'ResidualAttention', 'SGE', 'SimAM', 'SelectiveKernel',
    'TripletAttention'
]
