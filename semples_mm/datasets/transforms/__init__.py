"""WSSS transforms; everything else comes from mmcv / mmseg."""
from .check_seg_map import CheckSegMapValues
from .formatting import PackWSSSInputs
from .random_flip_flag import RandomFlipFlag
from .random_resized_crop import SegRandomResizedCrop
from .timm_rand_augment import TimmRandAugment
from .timm_random_erasing import TimmRandomErasing

__all__ = [
    'PackWSSSInputs', 'CheckSegMapValues', 'RandomFlipFlag',
    'SegRandomResizedCrop', 'TimmRandAugment', 'TimmRandomErasing'
]
