"""A horizontal-flip draw for samples whose pixels are never loaded."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomFlipFlag(BaseTransform):
    """Draw ``flip`` (and ``flip_direction='horizontal'``) as ``RandomFlip``
    would, without touching an image.

    For pipelines that load no pixels, e.g. the prompt phase of a config
    whose crop features come from ``FixedViewBankCropFeatures``: the bank
    holds each image's features and those of its flip, and the sample only
    says which to take. Draws from NumPy's global generator exactly as
    mmcv's ``RandomFlip(prob, direction='horizontal')`` does, so the two
    flip the same samples (and ``RandomStateHook`` makes resumes exact).

    Args:
        prob (float): probability of a flip.
    """

    def __init__(self, prob: float = 0.5):
        if not 0 <= prob <= 1:
            raise ValueError(f'RandomFlipFlag: prob must lie in [0, 1], got '
                             f'{prob!r}')
        self.prob = prob

    def transform(self, results: dict) -> dict:
        direction = np.random.choice(['horizontal', None],
                                     p=[self.prob, 1 - self.prob])
        results['flip'] = direction is not None
        results['flip_direction'] = direction
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(prob={self.prob})'
