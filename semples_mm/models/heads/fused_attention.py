"""WeakTr's fused attention, read without forming the fused (N, N) map.

WeakTr's head averages the C = L x heads softmax attention maps A_c of its
backbone with fusion weights w_c, ``A = sum_c w_c A_c / C``, and reads two
parts of A: the class-to-patch rows and the patch-to-patch block applied to
the CAMs. At full resolution (about 1,000 tokens) the 72 maps of DeiT-S
hold 72 x 10^6 values per image; stacking and mixing them was most of the
export's time and memory. Here both parts come from the queries and keys:
the class rows as small explicit maps, the patch block through a fused
attention kernel, which never holds more than a tile of a map.
"""
import torch
import torch.nn.functional as F
from torch import Tensor

from ..weaktr_features import attention_softmax


def fused_class_attention(queries: Tensor, keys: Tensor, scale: float,
                          weights: Tensor, num_class_tokens: int) -> Tensor:
    """Class-to-patch rows of the fused attention, ``A[:, :S, S:]``.

    Args:
        queries (Tensor): (B, C, N, d), the maps' queries, channel c.
        keys (Tensor): (B, C, N, d).
        scale (float): the attention's scale.
        weights (Tensor): (B, C) fusion weights, same channel order.
        num_class_tokens (int): S, the first S tokens are class tokens.

    Returns:
        Tensor: (B, S, P), P = N - S.
    """
    S = num_class_tokens
    maps = attention_softmax(queries[:, :, :S], keys, scale)[..., S:]
    B, C = weights.shape
    # sum_c w_c * map_c / C, as one batched matmul
    return (weights.unsqueeze(1) @ maps.flatten(2)).view(B, S, -1) / C


def propagate_by_fused_attention(cams: Tensor, queries: Tensor, keys: Tensor,
                                 scale: float, weights: Tensor,
                                 num_class_tokens: int) -> Tensor:
    """Apply the patch-to-patch block of the fused attention to CAMs.

    ``out[b, k, i] = sum_j A[b, S + i, S + j] * cams[b, k, j]``. As A is a
    weighted sum of softmax maps, ``A v = sum_c A_c (w_c v) / C``: every
    channel's attention is applied to its weighted CAMs, with zeros for the
    class-token keys (their columns are not part of the block), by
    ``scaled_dot_product_attention``. Its fused kernels need values as wide
    as the queries, so the K CAM columns go in groups of d, zero-padded.

    Args:
        cams (Tensor): (B, K, P) CAMs over the P patches.
        queries (Tensor): (B, C, N, d).
        keys (Tensor): (B, C, N, d).
        scale (float): the attention's scale.
        weights (Tensor): (B, C) fusion weights, the channel order of the
            queries.
        num_class_tokens (int): S; N = S + P.

    Returns:
        Tensor: (B, K, P).
    """
    S = num_class_tokens
    B, C, N, d = queries.shape
    K = cams.shape[1]
    # each channel's CAMs carry its weight, (B, C, P, K)
    weighted = cams.transpose(1, 2).unsqueeze(1) * (weights / C)[:, :, None,
                                                                 None]
    patch_queries = queries[:, :, S:]
    out = []
    for start in range(0, K, d):
        width = min(d, K - start)
        # values over all N keys: zero for the class-token keys (their
        # columns are not part of the block) and for the padding
        values = keys.new_zeros(B, C, N, d)
        values[:, :, S:, :width] = weighted[..., start:start + width]
        applied = F.scaled_dot_product_attention(
            patch_queries, keys, values, scale=scale)  # (B, C, P, d)
        out.append(applied[..., :width].sum(1))
    return torch.cat(out, -1).transpose(1, 2)
