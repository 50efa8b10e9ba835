"""Crop features kept per input view, for prompt phases whose views repeat."""
from collections import OrderedDict
from typing import Dict, Hashable, List, Optional, Sequence, Tuple

import torch
from mmseg.registry import MODELS
from torch import Tensor

from .base import CropFeatureSource, joined, per_image, present_classes


@MODELS.register_module()
class ViewCacheCropFeatures(CropFeatureSource):
    """Least-recently-used store of each view's crop features.

    A view's key is its image path (``img_path`` in the metainfo) and a
    fingerprint of the input tensor itself (two float64 reductions, one of
    them weighted by fixed pseudo-random weights), so a flipped or
    differently cropped view of the same image is another entry, and
    nothing relies on the pipeline recording its random choices. Only the
    views a batch misses go through the frozen networks. Worth it when views
    repeat (flip-only augmentation over many epochs); random crops only
    miss.

    Args:
        max_views (int): views kept; the least recently used one is dropped
            beyond it.
    """

    def __init__(self, max_views: int = 100_000):
        if not isinstance(max_views, int) or max_views < 1:
            raise ValueError('ViewCacheCropFeatures: max_views must be a '
                             f'positive int, got {max_views!r}.')
        self.max_views = max_views
        self._entries: 'OrderedDict[Hashable, Tuple]' = OrderedDict()
        self._weights: Dict[Tuple, Tensor] = {}
        self._last_hit_rate: Optional[float] = None
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def reset(self):
        self._entries.clear()
        self._weights.clear()
        self._last_hit_rate = None
        self.hits = self.misses = 0

    @property
    def hit_rate(self) -> Optional[float]:
        """Views found over views looked up since the last reset."""
        looked_up = self.hits + self.misses
        return self.hits / looked_up if looked_up else None

    def log_vars(self):
        # logged, not optimised (mmengine sums only keys with 'loss')
        return ({} if self._last_hit_rate is None else
                dict(prompt_cache_hit_rate=self._last_hit_rate))

    def _fingerprint_weights(self, numel: int, device) -> Tensor:
        key = (numel, str(device))
        if key not in self._weights:
            generator = torch.Generator().manual_seed(numel)
            self._weights[key] = torch.rand(
                numel, generator=generator, dtype=torch.float64).to(device)
        return self._weights[key]

    def view_keys(self, inputs: Tensor,
                  img_paths: Sequence[Optional[str]]) -> List[Hashable]:
        """Keys of the views in a batch: (B, 3, H, W) inputs and the image
        file of each view -> B hashable keys."""
        flat = inputs.detach().flatten(1).to(torch.float64)
        weights = self._fingerprint_weights(flat.shape[1], flat.device)
        sums = torch.stack([flat.sum(1), (flat * weights).sum(1)], 1)
        # 12 significant digits: equal views agree far beyond that whatever
        # the batch they come in; different views differ far above it.
        return [(path, tuple(inputs.shape[1:]),
                 tuple(float(f'{v:.12g}') for v in row))
                for path, row in zip(img_paths, sums.tolist())]

    def __call__(self, encoder, inputs, labels, data_samples):
        if inputs is None:
            raise ValueError('ViewCacheCropFeatures needs the batch images '
                             'to fingerprint the views.')
        keys = self.view_keys(
            inputs, [s.metainfo.get('img_path') for s in data_samples])
        found = []
        for key, classes in zip(keys, present_classes(labels)):
            entry = self._entries.get(key)
            if entry is not None and entry[0] == classes:
                self._entries.move_to_end(key)
                found.append(entry[1])
            else:
                found.append(None)
        missing = [i for i, feats in enumerate(found) if feats is None]
        if missing:
            computed = per_image(
                encoder.features(inputs[missing], labels[missing]),
                labels[missing])
            for i, (classes, feats) in zip(missing, computed):
                self._entries[keys[i]] = (classes, tuple(
                    f.detach() for f in feats))
                self._entries.move_to_end(keys[i])
                found[i] = feats
            while len(self._entries) > self.max_views:
                self._entries.popitem(last=False)
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        self._last_hit_rate = 1 - len(missing) / len(keys) if keys else None
        return joined(found)
