"""The embedded synthetic world (see ``world.py``)."""
from .world import (CONTEXT_OF_CLASS, GREY_GROUND, SYNTHETIC_CLASSES,
                    SYNTHETIC_CONTEXTS, SyntheticRenderer, caption_for,
                    generate_synthetic_world, render_caption_pairs,
                    sample_scene, save_palette_mask, voc_palette,
                    world_mismatch)

__all__ = [
    'SYNTHETIC_CLASSES', 'SYNTHETIC_CONTEXTS', 'CONTEXT_OF_CLASS',
    'GREY_GROUND', 'SyntheticRenderer', 'generate_synthetic_world',
    'render_caption_pairs', 'caption_for', 'sample_scene', 'voc_palette',
    'save_palette_mask', 'world_mismatch'
]
