from .cam_head import CAMHead
from .deeplabv2_head import DeepLabV2Head

__all__ = ['CAMHead', 'DeepLabV2Head']
