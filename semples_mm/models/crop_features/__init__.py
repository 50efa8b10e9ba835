"""Where the prompt phase gets the frozen CLIP features of its masked crops.

In the prompt phase the CAM network and CLIP are frozen, so a view's crop
features never change while the prompts learn. A source decides whether they
are recomputed every step (the authors' way), kept per view, or computed
once per image up front; the segmentor picks one from its config
(``model.prompt_crop_features``) and calls it through one interface
(:class:`CropFeatureSource`).
"""
from .base import CropEncoder, CropFeatureSource, per_image, joined
from .fixed_view_bank import FixedViewBankCropFeatures
from .recompute import RecomputeCropFeatures
from .view_cache import ViewCacheCropFeatures

__all__ = [
    'CropEncoder', 'CropFeatureSource', 'per_image', 'joined',
    'RecomputeCropFeatures', 'ViewCacheCropFeatures',
    'FixedViewBankCropFeatures'
]
