from .cam_selection_hook import BestCAMSelectionHook
from .cam_visualization_hook import CAMVisualizationHook
from .phase_checkpoint_hook import PhaseCheckpointHook, phase_checkpoint_path
from .phase_log_hook import PhaseLogHook
from .pseudo_label_hook import PseudoLabelHook
from .random_state_hook import RandomStateHook

__all__ = [
    'BestCAMSelectionHook', 'CAMVisualizationHook', 'PhaseCheckpointHook',
    'PhaseLogHook', 'PseudoLabelHook', 'RandomStateHook',
    'phase_checkpoint_path'
]
