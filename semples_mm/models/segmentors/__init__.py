from .cam_segmentor import CAMSegmentor
from .phase_schedule import PHASE_NAMES, Phase, PhaseSchedule
from .phased_ddp import PhasedDistributedDataParallel
from .semples import SemPLeS

__all__ = [
    'CAMSegmentor', 'PHASE_NAMES', 'Phase', 'PhaseSchedule',
    'PhasedDistributedDataParallel', 'SemPLeS'
]
