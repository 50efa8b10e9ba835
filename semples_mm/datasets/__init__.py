"""WSSS datasets (VOC layout: PASCAL VOC, COCO, the synthetic world, your
own) and transforms.

Importing this package registers the datasets into mmseg's ``DATASETS`` and
the transforms into ``TRANSFORMS``.
"""
from . import transforms  # noqa: F401  (registers the transforms)
from .coco_wsss import COCO_CLASSES, COCOWSSSDataset
from .synthetic import (CONTEXT_OF_CLASS, SYNTHETIC_CLASSES,
                        SYNTHETIC_CONTEXTS, SyntheticRenderer,
                        generate_synthetic_world)
from .synthetic_wsss import SyntheticWSSSDataset
from .transforms import (CheckSegMapValues, PackWSSSInputs, RandomFlipFlag,
                         SegRandomResizedCrop)
from .voc_layout import PascalVOCWSSSDataset, VOCLayoutWSSSDataset

__all__ = [
    'VOCLayoutWSSSDataset', 'PascalVOCWSSSDataset', 'COCOWSSSDataset',
    'SyntheticWSSSDataset', 'PackWSSSInputs', 'CheckSegMapValues',
    'RandomFlipFlag', 'SegRandomResizedCrop', 'COCO_CLASSES',
    'SYNTHETIC_CLASSES', 'SYNTHETIC_CONTEXTS', 'CONTEXT_OF_CLASS',
    'SyntheticRenderer', 'generate_synthetic_world'
]
