"""MS COCO 2014 with image-level labels for WSSS (converter's layout)."""
import json
import os.path as osp
from collections import defaultdict
from typing import Optional

import numpy as np
from mmseg.registry import DATASETS

from .voc_layout import VOCLayoutWSSSDataset, palette_for

# COCO's 80 object categories in increasing category-id order, which is the
# order the converter maps them to mask ids 1..80.
COCO_CLASSES = (
    'background', 'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus',
    'train', 'truck', 'boat', 'traffic light', 'fire hydrant', 'stop sign',
    'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag',
    'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard',
    'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon',
    'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot',
    'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote',
    'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink',
    'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear',
    'hair drier', 'toothbrush')


@DATASETS.register_module()
class COCOWSSSDataset(VOCLayoutWSSSDataset):
    """COCO 2014 (80 classes + background) in the layout written by
    ``tools/dataset_converters/coco2014.py``::

        data_root/
          train2014/COCO_train2014_<12 digits>.jpg, val2014/...
          SegmentationClass/train2014/<same stem>.png   class ids 0..80, 255
          ImageSets/train2014.txt, ImageSets/val2014.txt   image ids (stems)

    Labels come from ``label_file`` if given (an ``.npy`` file may be keyed
    by the stems or by their 12 digits, with or without '.jpg': the
    authors' loader looks ``coco/cls_labels.npy`` up by the 12-digit ids
    of ``coco/train_id.txt``; arrays of WeakTr's 90 category-id slots are
    read with ``label_slots``), else the class-id mask, else
    ``instances_file`` (``annotations/instances_<split>.json``; the 80
    category ids sorted ascending map to classes 1..80; crowd annotations
    are left out, as the converter marks them 255 in the masks).

    Args:
        instances_file (str, optional): COCO instances JSON relative to
            ``data_root``, read only for images that have no mask.
        Others: see :class:`VOCLayoutWSSSDataset`.
    """
    METAINFO = dict(classes=COCO_CLASSES, palette=palette_for(81))

    def __init__(self,
                 ann_file: str,
                 data_prefix: dict = dict(
                     img_path='train2014',
                     seg_map_path='SegmentationClass/train2014'),
                 instances_file: Optional[str] = None,
                 **kwargs) -> None:
        self.instances_file = instances_file
        self._instance_labels = None
        super().__init__(ann_file=ann_file, data_prefix=data_prefix,
                         **kwargs)

    def _join_prefix(self):
        super()._join_prefix()
        if self.instances_file is not None and \
                not osp.isabs(self.instances_file):
            self.instances_file = osp.join(self.data_root,
                                           self.instances_file)

    def _load_instance_labels(self) -> dict:
        """{image stem: sorted foreground indices} from the instances JSON."""
        if not self._exists(self.instances_file):
            raise FileNotFoundError(
                f'instances_file {self.instances_file} does not exist; give '
                'the COCO annotations/instances_<split>.json or the masks')
        coco = json.loads(self._get(self.instances_file))
        cat_ids = sorted(c['id'] for c in coco['categories'])
        num_fg = len(self.foreground_classes)
        if len(cat_ids) != num_fg:
            raise ValueError(
                f'{self.instances_file} has {len(cat_ids)} categories but the '
                f'dataset has {num_fg} foreground classes')
        index_of_cat = {c: i for i, c in enumerate(cat_ids)}
        stem_of_image = {im['id']: osp.splitext(im['file_name'])[0]
                         for im in coco['images']}
        present = defaultdict(set)
        for ann in coco['annotations']:
            if ann.get('iscrowd', 0):
                continue
            present[stem_of_image[ann['image_id']]].add(
                index_of_cat[ann['category_id']])
        return {stem: sorted(present.get(stem, ()))
                for stem in stem_of_image.values()}

    def _label_file_keys(self, img_id: str):
        """Also the 12 digits of ``COCO_<split>_<12 digits>``: the
        authors' COCO ids (WeakTr's coco/train_id.txt) are those."""
        number = img_id.rsplit('_', 1)[-1]
        return super()._label_file_keys(img_id) + (
            number, number + self.img_suffix)

    def _annotation_source(self) -> str:
        return f'instances_file={self.instances_file}'

    def _labels_from_annotation(self, img_id: str):
        if self.instances_file is None:
            return None
        if self._instance_labels is None:
            self._instance_labels = self._load_instance_labels()
        if img_id not in self._instance_labels:
            raise KeyError(f'image {img_id} is not in {self.instances_file}')
        labels = np.zeros(len(self.foreground_classes), np.float32)
        labels[self._instance_labels[img_id]] = 1.0
        return labels

    def load_data_list(self):
        data_list = super().load_data_list()
        self._instance_labels = None  # free the table after building
        return data_list
