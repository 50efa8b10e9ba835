"""timm's RandAugment on the image of an mmseg sample."""
from typing import Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS
from PIL import Image

# The CAM network's default normalisation mean (RGB, 0-255 pixels).
IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)


def rand_augment_hparams(img_mean: Sequence[float],
                         img_size: Union[int, Sequence[int]],
                         interpolation: str) -> dict:
    """The hyper-parameters timm's ``create_transform`` hands to
    ``rand_augment_transform`` for a training crop of ``img_size``.

    ``translate_const`` is 45 % of the crop's shorter side (100 for 224),
    ``img_mean`` (the fill of the geometric ops) the normalisation mean
    rounded to 0-255 integers, and ``interpolation`` a PIL filter unless it
    is 'random' (then timm's ops pick bilinear or bicubic per call).

    Args:
        img_mean (Sequence[float]): RGB mean in 0-255 pixel units (the data
            preprocessor's ``mean``).
        img_size (int | Sequence[int]): the crop size the transform runs on.
        interpolation (str): 'bicubic', 'bilinear', 'nearest', ... or
            'random'.
    """
    from timm.data.transforms import str_to_pil_interp
    sizes = (img_size, ) if isinstance(img_size, int) else tuple(img_size)
    if len(img_mean) != 3:
        raise ValueError(f'TimmRandAugment: img_mean={tuple(img_mean)} needs '
                         '3 values (RGB, 0-255).')
    hparams = dict(
        translate_const=int(min(sizes) * 0.45),
        img_mean=tuple(min(255, int(round(float(m)))) for m in img_mean))
    if interpolation != 'random':
        try:
            hparams['interpolation'] = str_to_pil_interp(interpolation)
        except KeyError as error:
            raise ValueError(
                f'TimmRandAugment: interpolation={interpolation!r} is not a '
                "timm interpolation name ('bicubic', 'bilinear', 'nearest', "
                "... or 'random').") from error
    return hparams


@TRANSFORMS.register_module()
class TimmRandAugment(BaseTransform):
    """RandAugment as timm builds it from a policy string (the DeiT/WeakTr
    training recipe uses 'rand-m9-mstd0.5-inc1'), on ``results['img']``.

    The hyper-parameters are those timm's ``create_transform`` passes for a
    crop of ``img_size`` (see :func:`rand_augment_hparams`), so the ops,
    magnitudes, fill colour and interpolation match a timm pipeline of the
    same settings. mmcv loads images as BGR uint8; the image goes to timm as
    an RGB PIL image and comes back as BGR uint8. Randomness is timm's:
    Python's and NumPy's global generators.

    Image only: RandAugment includes geometric ops (rotate, shear,
    translate) that would move the pixels away from ``gt_seg_map``, so a
    pipeline with a mask must not use it. The SemPLeS training phases read
    image labels only (no LoadAnnotations in their pipelines); a sample
    that carries a mask is refused.

    Required keys: img (H, W, 3) uint8 BGR. Modified keys: img.

    Args:
        config_str (str): timm RandAugment policy, 'rand-...'.
        img_mean (Sequence[float]): RGB normalisation mean in 0-255 units,
            the fill of the geometric ops. Defaults to ImageNet's.
        img_size (int | Sequence[int]): training crop size, for
            ``translate_const``. Defaults to 224.
        interpolation (str): interpolation of the geometric ops; the
            training interpolation of the timm recipe. Defaults to 'bicubic'.
    """

    def __init__(self,
                 config_str: str = 'rand-m9-mstd0.5-inc1',
                 img_mean: Sequence[float] = IMAGENET_MEAN_RGB,
                 img_size: Union[int, Sequence[int]] = 224,
                 interpolation: str = 'bicubic'):
        from timm.data.auto_augment import rand_augment_transform
        if not isinstance(config_str, str) or \
                not config_str.startswith('rand'):
            raise ValueError(
                f'TimmRandAugment: config_str={config_str!r} is not a timm '
                "RandAugment policy; it must start with 'rand', e.g. "
                "'rand-m9-mstd0.5-inc1'.")
        self.config_str = config_str
        self.hparams = rand_augment_hparams(img_mean, img_size,
                                            interpolation)
        try:
            self.augment = rand_augment_transform(config_str,
                                                  dict(self.hparams))
        except (AssertionError, ValueError) as error:
            raise ValueError(
                f'TimmRandAugment: timm cannot parse config_str='
                f'{config_str!r} ({error!r}); see timm.data.auto_augment.'
                'rand_augment_transform for the sections.') from error

    def transform(self, results: dict) -> dict:
        if results.get('gt_seg_map') is not None or results.get(
                'seg_fields'):
            raise ValueError(
                'TimmRandAugment moves pixels (rotate, shear, translate) but '
                'the sample has a segmentation mask it would not move; drop '
                'LoadAnnotations from this pipeline (the SemPLeS training '
                'phases need image labels only).')
        img = results['img']
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(
                'TimmRandAugment needs a (H, W, 3) uint8 BGR image, got '
                f'{img.dtype} {img.shape}; put it before transforms that '
                'make the image float (TimmRandomErasing).')
        rgb = Image.fromarray(np.ascontiguousarray(img[..., ::-1]))
        out = np.asarray(self.augment(rgb), dtype=np.uint8)
        results['img'] = np.ascontiguousarray(out[..., ::-1])
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(config_str={self.config_str!r}, '
                f'hparams={self.hparams})')
