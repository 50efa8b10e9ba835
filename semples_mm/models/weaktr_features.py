"""The contract between WeakTr's backbone and its CAM head."""
from typing import NamedTuple, Tuple

from torch import Tensor


def attention_softmax(queries: Tensor, keys: Tensor, scale: float) -> Tensor:
    """Softmax attention maps ``softmax(q k^T * scale)`` over the keys.

    Args:
        queries (Tensor): (..., M, d), any M query rows.
        keys (Tensor): (..., N, d).
        scale (float): the attention's scale, ``d ** -0.5``.

    Returns:
        Tensor: (..., M, N), rows sum to 1.
    """
    return ((queries @ keys.transpose(-2, -1)) * scale).softmax(dim=-1)


class WeakTrFeatures(NamedTuple):
    """What :class:`WeakTrViT` hands to :class:`WeakTrCAMHead`.

    With K class tokens, P = h * w patches, N = K + P tokens, L blocks of
    ``heads`` heads, width C and head width d = C / heads:

    Attributes:
        patch_tokens (Tensor): (B, C, h, w) patch tokens after the last block,
            without the final norm (WeakTr feeds them to its head as they
            are).
        class_tokens (Tensor): (B, K, C) class tokens after the last block,
            without the final norm.
        attn_queries (Tensor): (B, L, heads, N, d) queries of every block's
            attention.
        attn_keys (Tensor): (B, L, heads, N, d) its keys. Block l's softmax
            attention (rows are queries) is ``attention_softmax(q, k,
            attn_scale)``: the (B, L, heads, N, N) maps are not kept (at
            full resolution they are most of a forward's memory and time);
            the head recomputes the parts it reads.
        attn_scale (float): the attention's scale, d ** -0.5.
        attn_feats (Tensor): (B, L, N, C) attention-branch output of every
            block, after ``attn.proj`` and before the residual add.
        hw_shape (tuple[int, int]): the patch grid (h, w).
    """
    patch_tokens: Tensor
    class_tokens: Tensor
    attn_queries: Tensor
    attn_keys: Tensor
    attn_scale: float
    attn_feats: Tensor
    hw_shape: Tuple[int, int]

    def attention_maps(self) -> Tensor:
        """All softmax attention maps, (B, L, heads, N, N): L * heads * N^2
        values per image (72 maps of about 10^6 at 375x500 for DeiT-S), for
        inspection and tests, not for the CAM path."""
        return attention_softmax(self.attn_queries, self.attn_keys,
                                 self.attn_scale)
