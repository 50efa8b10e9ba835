from .attention_fusion import AdaptiveAttentionFusion
from .cam_head import CAMHead
from .deeplabv2_head import DeepLabV2Head
from .weaktr_cam_head import WeakTrCAMHead

__all__ = [
    'CAMHead', 'DeepLabV2Head', 'WeakTrCAMHead', 'AdaptiveAttentionFusion'
]
