"""WSSS datasets (PASCAL VOC, COCO, the synthetic world) and transforms.

Importing this package registers the datasets into mmseg's ``DATASETS`` and
the transforms into ``TRANSFORMS``.
"""
from . import transforms  # noqa: F401  (registers the transforms)
from .synthetic import (CONTEXT_OF_CLASS, SYNTHETIC_CLASSES,
                        SYNTHETIC_CONTEXTS, SyntheticRenderer,
                        generate_synthetic_world, render_caption_pairs)

__all__ = [
    'SYNTHETIC_CLASSES', 'SYNTHETIC_CONTEXTS', 'CONTEXT_OF_CLASS',
    'SyntheticRenderer', 'generate_synthetic_world', 'render_caption_pairs'
]
