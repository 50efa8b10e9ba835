"""The embedded synthetic world: rendering, captions and generation on disk
(its dataset is ``SyntheticWSSSDataset``)."""
from .captions import caption_for
from .renderer import (CONTEXT_OF_CLASS, GREY_GROUND, SYNTHETIC_CLASSES,
                       SYNTHETIC_CONTEXTS, SyntheticRenderer)
from .world import generate_synthetic_world, sample_scene, world_mismatch

__all__ = [
    'SYNTHETIC_CLASSES', 'SYNTHETIC_CONTEXTS', 'CONTEXT_OF_CLASS',
    'GREY_GROUND', 'SyntheticRenderer', 'generate_synthetic_world',
    'caption_for', 'sample_scene', 'world_mismatch'
]
