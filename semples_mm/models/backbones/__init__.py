from ..weaktr_checkpoint import (convert_weaktr_checkpoint,
                                 convert_weaktr_state_dict,
                                 deit_to_weaktr_backbone)
from ..weaktr_features import WeakTrFeatures
from .weaktr_vit import WeakTrViT

__all__ = [
    'WeakTrViT', 'WeakTrFeatures', 'convert_weaktr_checkpoint',
    'convert_weaktr_state_dict', 'deit_to_weaktr_backbone'
]
