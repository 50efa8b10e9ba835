"""WSSS datasets (PASCAL VOC, COCO, the synthetic world) and transforms.

Importing this package registers the datasets into mmseg's ``DATASETS`` and
the transforms into ``TRANSFORMS``.
"""
from . import transforms  # noqa: F401  (registers the transforms)
from .class_names import COCO_CLASSES, SYNTHETIC_WSSS_CLASSES, VOC_CLASSES
from .coco_wsss import COCOWSSSDataset
from .synthetic import (CONTEXT_OF_CLASS, SYNTHETIC_CLASSES,
                        SYNTHETIC_CONTEXTS, SyntheticRenderer,
                        generate_synthetic_world, render_caption_pairs)
from .synthetic_wsss import SyntheticWSSSDataset
from .transforms import (CheckSegMapValues, PackWSSSInputs, RandomFlipFlag,
                         SegRandomResizedCrop)
from .voc_wsss import PascalVOCWSSSDataset

__all__ = [
    'PascalVOCWSSSDataset', 'COCOWSSSDataset', 'SyntheticWSSSDataset',
    'PackWSSSInputs', 'CheckSegMapValues', 'RandomFlipFlag',
    'SegRandomResizedCrop', 'VOC_CLASSES',
    'COCO_CLASSES', 'SYNTHETIC_WSSS_CLASSES', 'SYNTHETIC_CLASSES',
    'SYNTHETIC_CONTEXTS', 'CONTEXT_OF_CLASS', 'SyntheticRenderer',
    'generate_synthetic_world', 'render_caption_pairs'
]
