"""A guard against masks whose values are not class ids of the dataset."""
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
        num_classes (int): Classes including background; valid ids are
            0..num_classes-1 and ``ignore_index``.
        ignore_index (int): Defaults to 255.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255):
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)

    def transform(self, results: dict) -> dict:
        if 'gt_seg_map' not in results:
            return results
        values = np.unique(results['gt_seg_map'])
        bad = [int(v) for v in values
               if (v < 0 or v >= self.num_classes) and v != self.ignore_index]
        if bad:
            raise ValueError(
                f'mask {results.get("seg_map_path")} holds value(s) {bad} '
                f'outside 0..{self.num_classes - 1} and {self.ignore_index} '
                f'(ignore). The dataset has {self.num_classes} classes '
                'including background: check that the masks are class-id '
                'PNGs of this dataset and that num_classes is right.')
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')
