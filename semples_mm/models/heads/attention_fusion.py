"""WeakTr's adaptive attention fusion (AAF): one weight per attention map.

The L x heads attention maps of a ViT are weighed by a small network that
reads each head's attention-branch output, and averaged. Channel order is
WeakTr's, head-major: channel ``c = head * L + layer``, both for the maps and
for the per-head features. The layout matters because ``attn_head_ffn``
mixes channels, so released weights only work in this order.
"""
from typing import Union

import torch.nn as nn
from torch import Tensor

POOLS = ('max', 'avg')


def attention_feature_channels(attn_feats: Tensor, num_heads: int) -> Tensor:
    """Split attention-branch outputs per head, WeakTr's way.

    WeakTr views the C channels as (C / heads, heads) with the head as the
    LAST index (channel ``j = d * heads + head``), not as the (heads,
    C / heads) blocks the attention itself uses; released weights expect it.

    Args:
        attn_feats (Tensor): (B, L, N, C).
        num_heads (int): heads per block.

    Returns:
        Tensor: (B, heads * L, N, C / heads), channel ``head * L + layer``.
    """
    B, L, N, C = attn_feats.shape
    per_head = attn_feats.reshape(B, L, N, C // num_heads, num_heads)
    return per_head.permute(0, 4, 1, 2, 3).reshape(B, num_heads * L, N,
                                                   C // num_heads)


class AdaptiveAttentionFusion(nn.Module):
    """Weights in (0, 1) for the heads * L attention maps.

    Per channel, the feature (N, d) is pooled over the N tokens to (d,),
    ``attn_feat_ffn`` (Linear d -> d / feat_reduction -> 1, no activation in
    between, as in WeakTr) makes one score, and ``attn_head_ffn`` (an SE-style
    bottleneck over the channels, no biases) turns the scores into sigmoid
    weights.

    Args:
        num_channels (int): heads * L (72 for DeiT-S).
        head_dims (int): d = C / heads (64 for DeiT-S).
        reduction (float): bottleneck ratio of ``attn_head_ffn``; hidden
            width ``int(num_channels / reduction)`` (8 -> 9 for VOC).
        feat_reduction (float): ratio of ``attn_feat_ffn``; hidden width
            ``int(head_dims / feat_reduction)``. Defaults to 8.
        pool (str): 'max' or 'avg' over the tokens. Defaults to 'max'.
    """

    def __init__(self,
                 num_channels: int,
                 head_dims: int,
                 reduction: Union[int, float] = 8,
                 feat_reduction: Union[int, float] = 8,
                 pool: str = 'max') -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f'AdaptiveAttentionFusion: pool={pool!r} is not '
                             f'one of {POOLS}.')
        hidden = int(num_channels / reduction)
        feat_hidden = int(head_dims / feat_reduction)
        if hidden < 1 or feat_hidden < 1:
            raise ValueError(
                'AdaptiveAttentionFusion: hidden widths must be >= 1, got '
                f'int({num_channels} / reduction={reduction}) = {hidden} and '
                f'int({head_dims} / feat_reduction={feat_reduction}) = '
                f'{feat_hidden}; lower the reductions.')
        self.num_channels = num_channels
        self.pool = pool
        self.attn_feat_ffn = nn.Sequential(
            nn.Linear(head_dims, feat_hidden), nn.Linear(feat_hidden, 1))
        self.attn_head_ffn = nn.Sequential(
            nn.Linear(num_channels, hidden, bias=False), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_channels, bias=False), nn.Sigmoid())

    def pool_tokens(self, feats: Tensor, dim: int) -> Tensor:
        """The fusion's pooling ('max' or 'avg') over the tokens, ``dim``."""
        return feats.amax(dim) if self.pool == 'max' else feats.mean(dim)

    def forward(self, feats: Tensor) -> Tensor:
        """(B, channels, N, d) per-head features -> (B, channels) weights.

        The pooling commutes with :func:`attention_feature_channels`: a
        caller may pool first (:meth:`pool_tokens`) and pass N = 1.
        """
        scores = self.attn_feat_ffn(self.pool_tokens(feats, 2)).squeeze(-1)
        return self.attn_head_ffn(scores)
