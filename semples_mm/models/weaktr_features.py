"""The contract between WeakTr's backbone and its CAM head."""
from typing import NamedTuple, Tuple

from torch import Tensor


class WeakTrFeatures(NamedTuple):
    """What :class:`WeakTrViT` hands to :class:`WeakTrCAMHead`.

    With K class tokens, P = h * w patches, N = K + P tokens, L blocks of
    ``heads`` heads and width C:

    Attributes:
        patch_tokens (Tensor): (B, C, h, w) patch tokens after the last block,
            without the final norm (WeakTr feeds them to its head as they
            are).
        class_tokens (Tensor): (B, K, C) class tokens after the last block,
            without the final norm.
        attn_weights (Tensor): (B, L, heads, N, N) softmax attention of every
            block (rows are queries).
        attn_feats (Tensor): (B, L, N, C) attention-branch output of every
            block, after ``attn.proj`` and before the residual add.
        hw_shape (tuple[int, int]): the patch grid (h, w).
    """
    patch_tokens: Tensor
    class_tokens: Tensor
    attn_weights: Tensor
    attn_feats: Tensor
    hw_shape: Tuple[int, int]
