"""timm's random erasing, before the data preprocessor normalises."""
import math
import random
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

# The CAM network's default normalisation (RGB, 0-255 pixels).
IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)
IMAGENET_STD_RGB = (58.395, 57.12, 57.375)
MODES = ('const', 'rand', 'pixel')


@TRANSFORMS.register_module()
class TimmRandomErasing(BaseTransform):
    """Random erasing with the semantics of timm's ``RandomErasing``
    (Zhong et al.), on an image the data preprocessor normalises later.

    timm erases the NORMALISED tensor: with probability ``prob`` it draws a
    count in [min_count, max_count], and per box up to 10 times an area
    fraction U(min_area, max_area) / count and a log-uniform aspect ratio,
    keeps the first box strictly inside the image at a uniform position, and
    fills it with z: N(0, 1) per pixel and channel ('pixel'), N(0, 1) per
    channel ('rand') or 0 ('const'). Here the image is still in pixel units
    and the normalisation comes later (``SegDataPreProcessor``: channel flip
    if ``bgr_to_rgb``, then ``(x - mean) / std``), so the box is filled with
    ``mean + std * z`` per channel in the image's channel order: after the
    preprocessor it holds exactly z, as in timm, and the rest of the image
    is unchanged. The box, the count and the values are drawn as timm draws
    them (Python's ``random``, then torch's ``normal_`` of shape
    (3, h, w) in RGB order), so seeded alike both erase the same pixels.

    The output image is float32 (erased values are not whole pixels) also
    when nothing is erased, so every sample has one dtype. Put the transform
    last before packing, after every transform that needs uint8 (e.g.
    :class:`TimmRandAugment`). The erased boxes are recorded in
    ``results['erased_boxes']`` as (top, left, h, w).

    Image only: the mask (if any) is not touched, as in timm's
    classification pipelines; the SemPLeS training phases read no masks.

    Required keys: img (H, W, 3). Modified keys: img. Added keys:
    erased_boxes.

    Args:
        prob (float): probability of erasing an image. Defaults to 0.25
            (the DeiT/WeakTr recipe's ``--reprob``).
        mode (str): 'pixel' (recipe), 'rand' or 'const'.
        min_count (int): fewest boxes. Defaults to 1.
        max_count (int, optional): most boxes; None means ``min_count``.
        min_area (float): smallest area fraction. Defaults to 0.02.
        max_area (float): largest area fraction. Defaults to 1 / 3.
        min_aspect (float): smallest aspect ratio. Defaults to 0.3.
        max_aspect (float, optional): largest; None means 1 / min_aspect.
        mean (Sequence[float]): the data preprocessor's ``mean``, in its
            (RGB) order, 0-255 units.
        std (Sequence[float]): the data preprocessor's ``std``.
        bgr_to_rgb (bool): the data preprocessor's ``bgr_to_rgb``: True
            when the image here is BGR (mmcv's loading) and mean/std are
            RGB. Defaults to True.
    """

    def __init__(self,
                 prob: float = 0.25,
                 mode: str = 'pixel',
                 min_count: int = 1,
                 max_count: Optional[int] = None,
                 min_area: float = 0.02,
                 max_area: float = 1 / 3,
                 min_aspect: float = 0.3,
                 max_aspect: Optional[float] = None,
                 mean: Sequence[float] = IMAGENET_MEAN_RGB,
                 std: Sequence[float] = IMAGENET_STD_RGB,
                 bgr_to_rgb: bool = True):
        if not 0 <= prob <= 1:
            raise ValueError(f'TimmRandomErasing: prob={prob!r} must lie in '
                             '[0, 1].')
        if mode not in MODES:
            raise ValueError(f'TimmRandomErasing: mode={mode!r} is not one '
                             f'of {MODES}.')
        max_count = min_count if max_count is None else max_count
        if not 1 <= min_count <= max_count:
            raise ValueError(
                f'TimmRandomErasing: need 1 <= min_count <= max_count, got '
                f'min_count={min_count}, max_count={max_count}.')
        if not 0 < min_area <= max_area <= 1:
            raise ValueError(
                f'TimmRandomErasing: need 0 < min_area <= max_area <= 1, got '
                f'{min_area}, {max_area}.')
        max_aspect = max_aspect or 1 / min_aspect
        if not 0 < min_aspect <= max_aspect:
            raise ValueError(
                f'TimmRandomErasing: need 0 < min_aspect <= max_aspect, got '
                f'{min_aspect}, {max_aspect}.')
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(
                f'TimmRandomErasing: mean={tuple(mean)} and std={tuple(std)} '
                'need 3 values each (std > 0): the data preprocessor\'s.')
        self.prob = prob
        self.mode = mode
        self.min_count = min_count
        self.max_count = max_count
        self.min_area = min_area
        self.max_area = max_area
        self.log_aspect = (math.log(min_aspect), math.log(max_aspect))
        self.bgr_to_rgb = bgr_to_rgb
        # mean/std per channel of the image as it is here.
        order = [2, 1, 0] if bgr_to_rgb else [0, 1, 2]
        self._mean = np.asarray(mean, np.float32)[order]
        self._std = np.asarray(std, np.float32)[order]
        self._order = order

    def _values(self, h: int, w: int) -> np.ndarray:
        """z of one box, (3, h, w) float32 in the preprocessor's order."""
        if self.mode == 'pixel':
            z = torch.empty((3, h, w), dtype=torch.float32).normal_()
        elif self.mode == 'rand':
            z = torch.empty((3, 1, 1), dtype=torch.float32).normal_()
            z = z.expand(3, h, w)
        else:
            z = torch.zeros((3, h, w), dtype=torch.float32)
        return z.numpy()

    def draw(self, img_h: int, img_w: int
             ) -> List[Tuple[int, int, int, int, np.ndarray]]:
        """The boxes (top, left, h, w) and values z (3, h, w) of one image,
        drawn in timm's order."""
        if random.random() > self.prob:
            return []
        area = img_h * img_w
        count = self.min_count if self.min_count == self.max_count else \
            random.randint(self.min_count, self.max_count)
        boxes = []
        for _ in range(count):
            for _attempt in range(10):
                target = random.uniform(self.min_area,
                                        self.max_area) * area / count
                aspect = math.exp(random.uniform(*self.log_aspect))
                h = int(round(math.sqrt(target * aspect)))
                w = int(round(math.sqrt(target / aspect)))
                if w < img_w and h < img_h:
                    top = random.randint(0, img_h - h)
                    left = random.randint(0, img_w - w)
                    boxes.append((top, left, h, w, self._values(h, w)))
                    break
        return boxes

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError('TimmRandomErasing needs a (H, W, 3) image, got '
                             f'shape {img.shape}.')
        img = img.astype(np.float32)  # a copy: the input stays untouched
        erased = []
        for top, left, h, w, z in self.draw(*img.shape[:2]):
            # image channel i is the preprocessor's channel self._order[i]
            # (the BGR/RGB flip is its own inverse); mean + std * z there
            # normalises back to z.
            values = z[self._order].transpose(1, 2, 0)
            img[top:top + h, left:left + w] = self._mean + self._std * values
            erased.append((top, left, h, w))
        results['img'] = img
        results['erased_boxes'] = erased
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(prob={self.prob}, '
                f'mode={self.mode!r}, count=({self.min_count}, '
                f'{self.max_count}), bgr_to_rgb={self.bgr_to_rgb})')
