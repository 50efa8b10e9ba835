"""WSSS transforms; everything else comes from mmcv / mmseg."""
from .check_seg_map import CheckSegMapValues
from .formatting import PackWSSSInputs
from .random_flip_flag import RandomFlipFlag
from .random_resized_crop import SegRandomResizedCrop

__all__ = [
    'PackWSSSInputs', 'CheckSegMapValues', 'RandomFlipFlag',
    'SegRandomResizedCrop'
]
