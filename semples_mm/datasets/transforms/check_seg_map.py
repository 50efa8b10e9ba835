"""A guard against masks whose values are not class ids of the dataset."""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CheckSegMapValues(BaseTransform):
    """Raise a clear error if ``gt_seg_map`` holds an id that is not a class.

    Put it right after ``LoadAnnotations``: colour (RGB) masks, masks of
    another dataset or pseudo masks written with another class list would
    otherwise train silently on wrong targets.

    Args:
        num_classes (int, optional): Classes including background; valid
            ids are 0..num_classes-1 and ``ignore_index``. None (default)
            takes the count of the sample's dataset (the WSSS datasets put
            ``num_classes`` in every sample), so a config that changes the
            classes needs no other change here.
        ignore_index (int): Defaults to 255.
    """

    def __init__(self, num_classes: Optional[int] = None,
                 ignore_index: int = 255):
        self.num_classes = None if num_classes is None else int(num_classes)
        self.ignore_index = int(ignore_index)

    def transform(self, results: dict) -> dict:
        if 'gt_seg_map' not in results:
            return results
        num_classes = self.num_classes or results.get('num_classes')
        if num_classes is None:
            raise KeyError(
                'CheckSegMapValues needs num_classes: pass it, or use a WSSS '
                'dataset (VOCLayoutWSSSDataset and its kin), whose '
                'samples carry their dataset\'s class count')
        values = np.unique(results['gt_seg_map'])
        bad = [int(v) for v in values
               if (v < 0 or v >= num_classes) and v != self.ignore_index]
        if bad:
            raise ValueError(
                f'mask {results.get("seg_map_path")} holds value(s) {bad} '
                f'outside 0..{num_classes - 1} and {self.ignore_index} '
                f'(ignore). The dataset has {num_classes} classes '
                'including background: check that the masks are class-id '
                'PNGs of this dataset and that num_classes is right.')
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')
