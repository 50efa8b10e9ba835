from .attention_fusion import AdaptiveAttentionFusion
from .cam_head import CAMHead, cams_to_segmentation, normalize_cams
from .deeplabv2_head import DeepLabV2Head
from .weaktr_cam_head import WeakTrCAMHead

__all__ = [
    'CAMHead', 'DeepLabV2Head', 'WeakTrCAMHead', 'AdaptiveAttentionFusion',
    'normalize_cams', 'cams_to_segmentation'
]
