from .cam_head import CAMHead, cams_to_segmentation, normalize_cams
from .deeplabv2_head import DeepLabV2Head

__all__ = [
    'CAMHead', 'DeepLabV2Head', 'normalize_cams', 'cams_to_segmentation'
]
