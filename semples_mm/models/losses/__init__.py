from .contrastive_prompt_loss import ContrastivePromptLoss
from .prompt_refinement_loss import PromptRefinementLoss
from .segment_label_matching_loss import SegmentLabelMatchingLoss
from .similarity_log import (SIM_MAX, SIM_MIN, clamp_similarity,
                             neg_log_dissimilarity, neg_log_similarity)

__all__ = [
    'SegmentLabelMatchingLoss', 'ContrastivePromptLoss',
    'PromptRefinementLoss', 'SIM_MIN', 'SIM_MAX', 'clamp_similarity',
    'neg_log_similarity', 'neg_log_dissimilarity'
]
