"""Packing of WSSS samples: mmseg's PackSegInputs plus image-level labels."""
import numpy as np
import torch
from mmseg.datasets.transforms import PackSegInputs
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackWSSSInputs(PackSegInputs):
    """mmseg's ``PackSegInputs`` plus the image-level labels.

    Adds to the ``SegDataSample``:

    - ``gt_class_labels``: torch.float32 (K,), multi-hot over the K
      foreground classes (from the data info's ``gt_class_labels``);
    - ``img_id`` in the metainfo.

    Works without ``gt_seg_map`` (then the sample has no ``gt_sem_seg``).

    Args:
        meta_keys (Sequence[str]): As for ``PackSegInputs``; ``img_id`` is
            added to the default keys.
    """

    def __init__(self,
                 meta_keys=('img_path', 'seg_map_path', 'img_id', 'ori_shape',
                            'img_shape', 'pad_shape', 'scale_factor', 'flip',
                            'flip_direction', 'reduce_zero_label')):
        super().__init__(meta_keys=meta_keys)

    def transform(self, results: dict) -> dict:
        packed = super().transform(results)
        if 'gt_class_labels' not in results:
            raise KeyError(
                'PackWSSSInputs needs "gt_class_labels" in the sample; use a '
                'WSSS dataset (VOCLayoutWSSSDataset and its VOC, COCO, synthetic kin) or '
                f'add the labels (sample keys: {sorted(results)})')
        labels = np.asarray(results['gt_class_labels'], dtype=np.float32)
        packed['data_samples'].gt_class_labels = torch.from_numpy(
            labels.copy())
        return packed
