"""Contrastive Prompt Learning loss (SemPLeS stage 2)."""
from typing import Optional

import torch
import torch.nn as nn
from mmseg.registry import MODELS

from .similarity_log import (clamp_similarity, mean_or_zero,
                             neg_log_dissimilarity, neg_log_similarity)
from .weights import check_weights


@MODELS.register_module()
class ContrastivePromptLoss(nn.Module):
    """Learn background prompts: close to the background crop, far from text.

    ``L = mean[-log s(E_I((1-M)*X), p_k)] + text_weight * mean[log s(t_k, p_k)]
    + fg_weight * mean[-log(1 - s(E_I(M*X), p_k))]``; similarities are
    clamped to [1e-4, 0.9999] before each log (the text-prompt term too,
    whose raw cosine can be negative).

    Args:
        text_weight (float): gamma, weight of the prompt-vs-class-text term.
            0.02 for VOC, 0.01 for COCO in the paper. Defaults to 0.02.
        fg_weight (float): weight of the optional prompt-vs-foreground term
            (an earlier version of the paper). Defaults to 0.0 (off).
        loss_name (str): key in the loss dict. Defaults to 'loss_prompt'.
    """

    def __init__(self, text_weight: float = 0.02, fg_weight: float = 0.0,
                 loss_name: str = 'loss_prompt') -> None:
        super().__init__()
        check_weights('ContrastivePromptLoss', text_weight=text_weight,
                      fg_weight=fg_weight)
        self.text_weight = text_weight
        self.fg_weight = fg_weight
        self._loss_name = loss_name

    def forward(self, bg_prompt_sim: torch.Tensor,
                text_prompt_sim: torch.Tensor,
                fg_prompt_sim: Optional[torch.Tensor] = None
                ) -> torch.Tensor:
        """Compute the loss.

        Args:
            bg_prompt_sim (Tensor): (P,) cosine of background crop and the
                prompt feature of its class.
            text_prompt_sim (Tensor): (P,) per pair, or (K,) per class:
                cosine of class text feature and class prompt feature. Its
                mean is taken either way.
            fg_prompt_sim (Tensor, optional): (P,) cosine of foreground crop
                and the prompt of its class. Needed when ``fg_weight != 0``.

        Returns:
            Tensor: scalar loss; 0 (still differentiable) when P = 0.
        """
        if bg_prompt_sim.numel() == 0:
            # No present pair: no prompt is trained by this batch, so the
            # per-class text term (which may be given as (K,)) is dropped
            # too; keep every input in the graph for DDP.
            zero = bg_prompt_sim.sum() + 0 * text_prompt_sim.sum()
            if fg_prompt_sim is not None:
                zero = zero + 0 * fg_prompt_sim.sum()
            return zero
        loss = neg_log_similarity(bg_prompt_sim) + self.text_weight * \
            mean_or_zero(torch.log(clamp_similarity(text_prompt_sim)))
        if self.fg_weight != 0:
            if fg_prompt_sim is None:
                raise ValueError(
                    f'{self.__class__.__name__}: fg_weight='
                    f'{self.fg_weight} needs fg_prompt_sim; pass it or set '
                    'fg_weight=0.0 in the loss config.')
            loss = loss + self.fg_weight * neg_log_dissimilarity(
                fg_prompt_sim)
        return loss

    @property
    def loss_name(self) -> str:
        """str: name of the loss item in the loss dict."""
        return self._loss_name
