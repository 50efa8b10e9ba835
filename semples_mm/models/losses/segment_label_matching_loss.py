"""Segment-Label Matching loss (SemPLeS stage 1, also part of stage 3)."""
import torch
import torch.nn as nn
from mmseg.registry import MODELS

from .similarity_log import neg_log_dissimilarity, neg_log_similarity
from .weights import check_weights


@MODELS.register_module()
class SegmentLabelMatchingLoss(nn.Module):
    """Match the CAM foreground to its class text, and not the background.

    ``L = mean[-log s(E_I(M*X), t_k)]
    + bg_weight * mean[-log(1 - s(E_I((1-M)*X), t_k))]``
    over the P present (image, class) pairs; similarities are clamped to
    [1e-4, 0.9999] before each log.

    Args:
        bg_weight (float): lambda, weight of the background term. 2.4 for
            VOC, 0.75 for COCO in the paper. Defaults to 2.4.
        loss_name (str): key of the loss in the loss dict; must start with
            ``loss_`` to be summed into the total. Defaults to 'loss_match'.
    """

    def __init__(self, bg_weight: float = 2.4,
                 loss_name: str = 'loss_match') -> None:
        super().__init__()
        check_weights('SegmentLabelMatchingLoss', bg_weight=bg_weight)
        self.bg_weight = bg_weight
        self._loss_name = loss_name

    def forward(self, fg_text_sim: torch.Tensor,
                bg_text_sim: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            fg_text_sim (Tensor): (P,) cosine of foreground crop and class
                text feature.
            bg_text_sim (Tensor): (P,) cosine of background crop and class
                text feature.

        Returns:
            Tensor: scalar loss; 0 (still differentiable) when P = 0.
        """
        return (neg_log_similarity(fg_text_sim) +
                self.bg_weight * neg_log_dissimilarity(bg_text_sim))

    @property
    def loss_name(self) -> str:
        """str: name of the loss item in the loss dict."""
        return self._loss_name
