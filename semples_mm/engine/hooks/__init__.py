from .cam_visualization_hook import CAMVisualizationHook
from .phase_hook import SemPLeSPhaseHook
from .prompt_feature_bank_hook import (PromptFeatureBankHook,
                                       build_crop_feature_bank)
from .pseudo_label_hook import PseudoLabelHook
from .random_state_hook import RandomStateHook

__all__ = [
    'CAMVisualizationHook', 'PromptFeatureBankHook', 'PseudoLabelHook',
    'RandomStateHook', 'SemPLeSPhaseHook', 'build_crop_feature_bank'
]
