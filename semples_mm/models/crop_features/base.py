"""The interface every crop-feature source implements."""
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor


class CropEncoder(NamedTuple):
    """What a source may ask of the model.

    Attributes:
        features (callable): ``features(inputs (B, 3, H, W), labels (B, K))``
            -> list of (P, D) tensors: the frozen CLIP features of the
            background crops, then of the foreground crops when the prompt
            loss uses them, pairs in ``labels.nonzero()`` order.
        preprocess (callable): a dataloader batch -> ``dict(inputs=...,
            data_samples=...)`` as the model's data preprocessor gives it
            (test mode).
    """
    features: Callable[[Tensor, Tensor], List[Tensor]]
    preprocess: Callable[[dict], dict]


class CropFeatureSource:
    """Gives the prompt phase's crop features of a batch.

    Subclasses implement :meth:`__call__`; they return what
    ``CropEncoder.features`` would return for the batch. A source that
    needs the pixels raises (naming itself) when a batch has none.
    """

    def __call__(self, encoder: CropEncoder, inputs: Optional[Tensor],
                 labels: Tensor, data_samples: Sequence) -> List[Tensor]:
        """Crop features of a batch.

        Args:
            encoder (CropEncoder): the model's frozen feature function.
            inputs (Tensor | None): (B, 3, H, W) preprocessed images; None
                for batches without pixels (for sources that never read
                them, e.g. ``FixedViewBankCropFeatures``).
            labels (Tensor): (B, K) multi-hot labels.
            data_samples (Sequence[SegDataSample]): the batch's samples.

        Returns:
            list[Tensor]: (P, D) tensors, see ``CropEncoder.features``.
        """
        raise NotImplementedError

    def reset(self) -> None:
        """Forget stored features (the CAM network is about to change)."""

    def log_vars(self) -> Dict[str, float]:
        """Scalars about the last call to log beside the losses."""
        return {}


def present_classes(labels: Tensor) -> List[Tuple[int, ...]]:
    """Class indices present in each row of (B, K) multi-hot labels, in
    ``labels.nonzero()`` order."""
    return [tuple(row.nonzero().flatten().tolist()) for row in labels]


def per_image(features: List[Tensor], labels: Tensor
              ) -> List[Tuple[Tuple[int, ...], Tuple[Tensor, ...]]]:
    """Split a batch's crop features by image.

    Args:
        features (list[Tensor]): (P, D) tensors of the batch.
        labels (Tensor): (B, K) multi-hot labels.

    Returns:
        list: per image, its present classes and the tuple of its
        (n_classes, D) feature tensors.
    """
    classes = present_classes(labels)
    counts = [len(c) for c in classes]
    return list(zip(classes, zip(*(f.split(counts) for f in features))))


def joined(per_image_features: Sequence[Tuple[Tensor, ...]]
           ) -> List[Tensor]:
    """The inverse of :func:`per_image`: per-image tuples -> (P, D) list."""
    return [torch.cat(parts) for parts in zip(*per_image_features)]
