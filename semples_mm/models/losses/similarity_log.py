"""Clamped logs of cosine similarities, shared by the SemPLeS losses.

Every SemPLeS loss takes a log of a cosine similarity s (or of 1 - s). A
cosine lies in [-1, 1], so s is clamped to [SIM_MIN, SIM_MAX] first: the
logs stay finite and a negative cosine cannot produce NaN.
"""
import torch

SIM_MIN = 1e-4
SIM_MAX = 0.9999


def clamp_similarity(sim: torch.Tensor) -> torch.Tensor:
    """Clamp cosine similarities to ``[SIM_MIN, SIM_MAX]``.

    Args:
        sim (Tensor): similarities of any shape.

    Returns:
        Tensor: same shape, clamped.
    """
    return sim.clamp(min=SIM_MIN, max=SIM_MAX)


def mean_or_zero(values: torch.Tensor) -> torch.Tensor:
    """Mean of ``values``, or a zero connected to their graph if empty.

    ``torch.mean`` of an empty tensor is NaN; a batch without any present
    (image, class) pair must instead give a loss of 0 that still
    backpropagates (zero gradients), so DDP sees every parameter used.

    Args:
        values (Tensor): shape (P,), P may be 0.

    Returns:
        Tensor: scalar.
    """
    if values.numel() == 0:
        return values.sum()  # 0, with a grad_fn when values requires grad
    return values.mean()


def neg_log_similarity(sim: torch.Tensor) -> torch.Tensor:
    """Mean of ``-log(clamp(s))``: pulls the similarity up to 1.

    Args:
        sim (Tensor): shape (P,).

    Returns:
        Tensor: scalar.
    """
    return mean_or_zero(-torch.log(clamp_similarity(sim)))


def neg_log_dissimilarity(sim: torch.Tensor) -> torch.Tensor:
    """Mean of ``-log(1 - clamp(s))``: pushes the similarity down to 0.

    Args:
        sim (Tensor): shape (P,).

    Returns:
        Tensor: scalar.
    """
    return mean_or_zero(-torch.log(1.0 - clamp_similarity(sim)))
