"""Features of learnt prompts while they are held fixed."""
from typing import Optional

import torch
from torch import Tensor


def write_count(tensor: Tensor) -> int:
    """How many times ``tensor`` was written in place: torch's version
    counter (``_version``, the one attribute autograd uses to detect
    in-place changes; torch has no public call for it)."""
    return tensor._version


class FrozenPromptFeatures:
    """CLIP features of prompts that a phase keeps frozen (SemPLeS's refine
    phase), encoded once and again only when the prompt tensor is written
    (its in-place version counter moves with every optimizer step and
    checkpoint load), moved, or the autocast state changes. The authors'
    code re-encodes them at every step.
    """

    def __init__(self):
        self._memo: Optional[tuple] = None

    def __call__(self, clip, ctx: Tensor) -> Tensor:
        """``clip.encode_prompts(ctx)`` without autograd, memoised.

        Args:
            clip (FrozenCLIP): the text encoder.
            ctx (Tensor): (K, L, W) context vectors.

        Returns:
            Tensor: (K, D) prompt features.
        """
        key = (ctx.data_ptr(), write_count(ctx), ctx.device, ctx.dtype,
               torch.is_autocast_enabled(ctx.device.type))
        if self._memo is None or self._memo[0] != key:
            with torch.no_grad():
                self._memo = (key, clip.encode_prompts(ctx))
        return self._memo[1]
