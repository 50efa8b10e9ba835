"""Prompt-guided Semantic Refinement loss (SemPLeS stage 3 extra term)."""
import torch
import torch.nn as nn
from mmseg.registry import MODELS

from .similarity_log import neg_log_dissimilarity
from .weights import check_weights


@MODELS.register_module()
class PromptRefinementLoss(nn.Module):
    """Keep the CAM foreground unlike its class's learned background prompt.

    ``L = loss_weight * mean[-log(1 - s(E_I(M*X), p_k))]`` over the P present
    (image, class) pairs, similarity clamped to [1e-4, 0.9999]. Usable on any
    CAM network whose masked foreground can be encoded by CLIP.

    Args:
        loss_weight (float): w; 0.05 for VOC, 0.2 for COCO in the paper.
            Defaults to 0.05.
        loss_name (str): key in the loss dict. Defaults to 'loss_refine'.
    """

    def __init__(self, loss_weight: float = 0.05,
                 loss_name: str = 'loss_refine') -> None:
        super().__init__()
        check_weights('PromptRefinementLoss', loss_weight=loss_weight)
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, fg_prompt_sim: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            fg_prompt_sim (Tensor): (P,) cosine of foreground crop and the
                (frozen) background prompt of its class.

        Returns:
            Tensor: scalar loss; 0 (still differentiable) when P = 0.
        """
        return self.loss_weight * neg_log_dissimilarity(fg_prompt_sim)

    @property
    def loss_name(self) -> str:
        """str: name of the loss item in the loss dict."""
        return self._loss_name
