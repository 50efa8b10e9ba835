from .cam_segmentor import CAMSegmentor
from .phase_schedule import PHASE_NAMES, Phase, PhaseSchedule
from .semples import SemPLeS
from .state_snapshot import StateSnapshot

__all__ = [
    'CAMSegmentor', 'PHASE_NAMES', 'Phase', 'PhaseSchedule', 'SemPLeS',
    'StateSnapshot'
]
