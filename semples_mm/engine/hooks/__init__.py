from .cam_selection_hook import BestCAMSelectionHook
from .cam_visualization_hook import CAMVisualizationHook
from .phase_hook import SemPLeSPhaseHook
from .pseudo_label_hook import PseudoLabelHook
from .random_state_hook import RandomStateHook

__all__ = [
    'BestCAMSelectionHook', 'CAMVisualizationHook', 'PseudoLabelHook', 'RandomStateHook',
    'SemPLeSPhaseHook'
]
