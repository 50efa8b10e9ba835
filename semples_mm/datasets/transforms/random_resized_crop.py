"""Random-resized crop of an image and its masks (Inception-style)."""
import math
from typing import Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.image.geometric import cv2_interp_codes, pillow_interp_codes
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmseg.registry import TRANSFORMS

# The interpolations each resize backend of mmcv.imresize offers.
RESIZE_CODES = dict(cv2=cv2_interp_codes, pillow=pillow_interp_codes)


@TRANSFORMS.register_module()
class SegRandomResizedCrop(BaseTransform):
    """Crop a random area and aspect ratio, then resize to ``size``.

    mmcv and mmseg have no random-resized crop that also handles masks, so
    this one crops ``img`` and every key in ``seg_fields`` (``gt_seg_map``)
    with the same box, resizing images with ``interpolation`` and masks with
    nearest neighbour, both by ``backend``. Image-level labels are kept as
    they are (a class may leave the crop; the usual WSSS practice, kept
    small by a large minimum ``scale``).

    The box: area fraction ~ U(scale), aspect ratio (w / h) log-uniform in
    ``ratio``; up to ``max_attempts`` draws, else a centre crop with the
    aspect ratio clipped to ``ratio``.

    Required keys: img (H, W, C); optional gt_seg_map (H, W), seg_fields.
    Modified keys: img, gt_seg_map, img_shape. Added keys: crop_bbox.

    Args:
        size (int | tuple[int, int]): Output (h, w); an int gives a square.
        scale (tuple[float, float]): Range of the crop's area fraction.
        ratio (tuple[float, float]): Range of the crop's aspect ratio.
        interpolation (str): mmcv interpolation for images. Default bicubic.
        max_attempts (int): Draws before the centre-crop fallback.
        backend (str): 'cv2' (default) or 'pillow', the resize of
            ``mmcv.imresize``. 'pillow' is PIL's ``Image.resize``, the call
            timm's RandomResizedCropAndInterpolation makes (through
            torchvision) in the authors' recipe: its bicubic filter widens
            with the scale when it shrinks (antialiasing), OpenCV's
            INTER_CUBIC does not. Pillow takes uint8 images and masks only.
    """

    def __init__(self,
                 size: Union[int, Sequence[int]],
                 scale: Tuple[float, float] = (0.08, 1.0),
                 ratio: Tuple[float, float] = (3. / 4., 4. / 3.),
                 interpolation: str = 'bicubic',
                 max_attempts: int = 10,
                 backend: str = 'cv2'):
        size = (size, size) if isinstance(size, int) else tuple(size)
        if len(size) != 2 or min(size) <= 0:
            raise ValueError(f'size={size}: give an int or (h, w) > 0')
        if not (0 < scale[0] <= scale[1] <= 1):
            raise ValueError(f'scale={scale}: need 0 < min <= max <= 1')
        if not (0 < ratio[0] <= ratio[1]):
            raise ValueError(f'ratio={ratio}: need 0 < min <= max')
        if backend not in RESIZE_CODES:
            raise ValueError(f'SegRandomResizedCrop: backend={backend!r}; '
                             f'use one of {sorted(RESIZE_CODES)}.')
        if interpolation not in RESIZE_CODES[backend]:
            raise ValueError(
                f'SegRandomResizedCrop: interpolation={interpolation!r} is '
                f'not available with backend={backend!r}; use one of '
                f'{sorted(RESIZE_CODES[backend])}.')
        self.size = size
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.interpolation = interpolation
        self.max_attempts = max_attempts
        self.backend = backend

    @cache_randomness
    def _crop_box(self, height: int, width: int) -> Tuple[int, int, int, int]:
        """(y0, x0, h, w) of the crop."""
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(self.max_attempts):
            target = area * np.random.uniform(*self.scale)
            aspect = math.exp(np.random.uniform(*log_ratio))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                y0 = np.random.randint(0, height - h + 1)
                x0 = np.random.randint(0, width - w + 1)
                return y0, x0, h, w
        aspect = width / height
        if aspect < self.ratio[0]:
            w, h = width, int(round(width / self.ratio[0]))
        elif aspect > self.ratio[1]:
            h, w = height, int(round(height * self.ratio[1]))
        else:
            h, w = height, width
        return (height - h) // 2, (width - w) // 2, h, w

    def _resize(self, array: np.ndarray, key: str,
                interpolation: str) -> np.ndarray:
        if self.backend == 'pillow' and array.dtype != np.uint8:
            raise TypeError(
                f'SegRandomResizedCrop(backend=\'pillow\'): {key} is '
                f'{array.dtype}, Pillow resizes uint8 only; load it as uint8 '
                "(e.g. no to_float32 in LoadImageFromFile) or use "
                "backend='cv2'.")
        out_h, out_w = self.size
        return mmcv.imresize(array, (out_w, out_h),
                             interpolation=interpolation,
                             backend=self.backend)

    def transform(self, results: dict) -> dict:
        img = results['img']
        y0, x0, h, w = self._crop_box(*img.shape[:2])
        results['img'] = self._resize(img[y0:y0 + h, x0:x0 + w], 'img',
                                      self.interpolation)
        seg_keys = list(results.get('seg_fields', []))
        if 'gt_seg_map' in results and 'gt_seg_map' not in seg_keys:
            seg_keys.append('gt_seg_map')
        for key in seg_keys:
            results[key] = self._resize(results[key][y0:y0 + h, x0:x0 + w],
                                        key, 'nearest')
        results['img_shape'] = results['img'].shape[:2]
        results['crop_bbox'] = (x0, y0, x0 + w, y0 + h)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(size={self.size}, '
                f'scale={self.scale}, ratio={self.ratio}, '
                f'interpolation={self.interpolation}, '
                f'backend={self.backend})')
