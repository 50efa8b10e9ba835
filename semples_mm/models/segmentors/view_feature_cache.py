"""Frozen CLIP features of the prompt phase's masked crops, per image view.

In the prompt phase the CAM network and CLIP are frozen, so the crop
features of a given input image (one view: the image after its random
flip, crop, ...) never change; only the prompts learn. Caching them per view
leaves the text encoder as the phase's main cost whenever views repeat
(e.g. flip-only augmentation over many epochs). Views that never repeat
(random crops) only miss, so a cache is worth enabling only for configs
whose prompt-phase views repeat.
"""
from collections import OrderedDict
from typing import Dict, Hashable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor


class ViewFeatureCache:
    """Least-recently-used store of per-view crop features.

    A view's key is its image path (``img_path`` in the metainfo) and a
    fingerprint of the input tensor itself (two float64 reductions, one of
    them weighted by fixed pseudo-random weights), so a flipped or
    differently cropped view of the same image is a different entry, and
    nothing relies on the pipeline recording its random choices.

    Args:
        max_views (int): views kept; the least recently used one is dropped
            beyond it.
    """

    def __init__(self, max_views: int = 100_000):
        if not isinstance(max_views, int) or max_views < 1:
            raise ValueError('ViewFeatureCache: max_views must be a positive '
                             f'int, got {max_views!r}.')
        self.max_views = max_views
        self._entries: 'OrderedDict[Hashable, Tuple]' = OrderedDict()
        self._weights: Dict[Tuple, Tensor] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self):
        """Drop every entry and the hit/miss counts."""
        self._entries.clear()
        self._weights.clear()
        self.hits = self.misses = 0

    @property
    def hit_rate(self) -> Optional[float]:
        looked_up = self.hits + self.misses
        return self.hits / looked_up if looked_up else None

    def _fingerprint_weights(self, numel: int, device) -> Tensor:
        key = (numel, str(device))
        if key not in self._weights:
            generator = torch.Generator().manual_seed(numel)
            self._weights[key] = torch.rand(
                numel, generator=generator, dtype=torch.float64).to(device)
        return self._weights[key]

    def view_keys(self, inputs: Tensor,
                  img_paths: Sequence[Optional[str]]) -> List[Hashable]:
        """Keys of the views in a batch.

        Args:
            inputs (Tensor): (B, 3, H, W) the model's input images.
            img_paths (Sequence[str | None]): the image file of each view.

        Returns:
            list: B hashable keys.
        """
        flat = inputs.detach().flatten(1).to(torch.float64)
        weights = self._fingerprint_weights(flat.shape[1], flat.device)
        sums = torch.stack([flat.sum(1), (flat * weights).sum(1)], 1)
        # 12 significant digits: equal views agree far beyond that whatever
        # the batch they come in; different views differ far above it.
        return [(path, tuple(inputs.shape[1:]),
                 tuple(float(f'{v:.12g}') for v in row))
                for path, row in zip(img_paths, sums.tolist())]

    def get(self, key: Hashable,
            classes: Tuple[int, ...]) -> Optional[Tuple[Tensor, ...]]:
        """The features stored for ``key`` if they cover exactly
        ``classes`` (the view's present classes), else None."""
        entry = self._entries.get(key)
        if entry is None or entry[0] != classes:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[1]

    def put(self, key: Hashable, classes: Tuple[int, ...],
            features: Tuple[Tensor, ...]):
        """Store the features of one view: each tensor (len(classes), D),
        rows in the order of ``classes``."""
        self._entries[key] = (classes, tuple(f.detach() for f in features))
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_views:
            self._entries.popitem(last=False)
