"""Datasets in PASCAL VOC's layout with image-level labels for WSSS."""
import io
import json
import os.path as osp
import xml.etree.ElementTree as ET
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmengine import fileio
from mmengine.logging import print_log
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS
from tqdm import tqdm

from ..utils.mask_png import read_mask, voc_palette
from .file_checks import check_image_file, check_mask_values, read_image_list

def palette_for(num_classes: int) -> List[List[int]]:
    """The VOC colours of ids 0..num_classes-1, as mmseg metainfo lists."""
    return voc_palette(num_classes).tolist()


@DATASETS.register_module()
class VOCLayoutWSSSDataset(BaseSegDataset):
    """A segmentation dataset in PASCAL VOC's layout (an image folder, a
    class-id mask folder, image lists) with multi-hot image labels: the
    base of the VOC, COCO and synthetic datasets, and the dataset of a
    user's own data (``metainfo=dict(classes=(...))``, background first).

    Each data info holds ``img_path``, ``seg_map_path`` (None when the mask
    file does not exist), ``img_id``, ``gt_class_labels`` (np.float32 (K,),
    multi-hot over the K foreground classes; index k <-> mask id k + 1),
    ``reduce_zero_label=False`` and ``seg_fields=[]``.

    Image labels come from, in this order: ``label_file`` if given (JSON
    ``{img_id: [class names]}``, or ``.npy`` in the form of the SemPLeS and
    WeakTr authors' ``cls_labels.npy``: a pickled dict ``{img_id: (K,)
    multi-hot array}``); else the image's mask in ``label_seg_map_path``
    (default: ``data_prefix['seg_map_path']``), its unique ids except 0 and
    255; else ``<xml_dir>/<img_id>.xml`` (the names of its objects). When
    ``seg_map_path`` points at pseudo masks, set ``label_seg_map_path`` or
    ``label_file`` so labels come from the ground truth.

    Checks done when the dataset is built (eager, cheap): the list names
    existing image files, each image file is readable and not truncated (JPEG
    and PNG end markers, see :func:`check_image_file`), masks read for labels
    hold only valid ids, class counts agree with ``num_classes`` /
    ``num_fg_classes``. Masks used only for training targets (e.g. pseudo
    masks) are checked when loaded, by the ``CheckSegMapValues`` transform.

    Unlike mmseg's datasets, ``metainfo['classes']`` is the list of mask ids
    in order (background first); it does not select a subset of
    ``METAINFO['classes']`` and no label remapping is done.

    Args:
        ann_file (str): Image list (ids, one per line), relative to
            ``data_root``, e.g. ``'ImageSets/Segmentation/train.txt'``.
        data_prefix (dict): ``img_path`` and ``seg_map_path`` folders.
        img_suffix (str): Image file suffix. Defaults to '.jpg'.
        seg_map_suffix (str): Mask file suffix. Defaults to '.png'.
        label_file (str, optional): JSON ``{img_id: [class names]}``, or a
            ``.npy`` dict ``{img_id: multi-hot array}`` whose arrays have
            the K foreground classes in the dataset's order (entry k <->
            mask id k + 1); a key may also be the id with ``img_suffix``
            (as the authors' loader accepts).
        label_slots (Sequence[int], optional): for a ``.npy`` label_file
            whose arrays are longer than K (WeakTr's COCO file has 90
            category-id slots): the entry of each of the K classes, in the
            dataset's class order. None (default): the arrays have K
            entries.
        label_seg_map_path (str, optional): Folder of masks to read labels
            from, relative to ``data_root``.
        xml_dir (str): Folder of VOC XML annotations. Defaults to
            'Annotations'.
        require_masks (bool): every listed image must have its mask in
            ``seg_map_path`` (training a segmentation network on pseudo
            masks); a missing folder or mask fails when the dataset is
            built, naming the folder and the first missing ids. Defaults to
            False (images without a mask get ``seg_map_path=None``).
        skip_empty (bool, optional): Drop images with no foreground class
            (the count is logged). Defaults to ``not test_mode``.
        num_classes (int, optional): Expected number of classes including
            background (e.g. the decode head's); checked against the class
            list.
        num_fg_classes (int, optional): Expected number of foreground classes
            (e.g. the CAM head's); checked against the class list.
    """
    METAINFO = dict(classes=None)

    def __init__(self,
                 ann_file: str,
                 data_root: Optional[str] = None,
                 data_prefix: dict = dict(
                     img_path='JPEGImages', seg_map_path='SegmentationClass'),
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 metainfo: Optional[dict] = None,
                 label_file: Optional[str] = None,
                 label_slots: Optional[Sequence[int]] = None,
                 label_seg_map_path: Optional[str] = None,
                 xml_dir: str = 'Annotations',
                 require_masks: bool = False,
                 skip_empty: Optional[bool] = None,
                 num_classes: Optional[int] = None,
                 num_fg_classes: Optional[int] = None,
                 test_mode: bool = False,
                 reduce_zero_label: bool = False,
                 **kwargs) -> None:
        if reduce_zero_label:
            raise ValueError(
                'reduce_zero_label=True is not supported by WSSS datasets: '
                'mask id 0 is background and image labels are built over ids '
                '1..K; remove reduce_zero_label from the dataset config')
        metainfo = dict(metainfo or {})
        classes = metainfo.get('classes', self.METAINFO['classes'])
        if classes is None:
            raise ValueError(
                f'{type(self).__name__}: give the class list, '
                "metainfo=dict(classes=('background', ...)), background "
                'first, in mask-id order.')
        classes = tuple(classes)
        if 'classes' in metainfo and 'palette' not in metainfo:
            metainfo['palette'] = palette_for(len(classes))
        if num_classes is not None and num_classes != len(classes):
            raise ValueError(
                f'num_classes={num_classes} but the dataset has '
                f'{len(classes)} classes including background ({classes}); '
                'make the model\'s num_classes and metainfo.classes agree')
        if num_fg_classes is not None and num_fg_classes != len(classes) - 1:
            raise ValueError(
                f'num_fg_classes={num_fg_classes} but the dataset has '
                f'{len(classes) - 1} foreground classes ({classes[1:]}); '
                'make the model\'s foreground class count and '
                'metainfo.classes agree')
        self.label_file = label_file
        self.label_slots = None if label_slots is None else \
            tuple(int(i) for i in label_slots)
        if self.label_slots is not None and (
                len(self.label_slots) != len(classes) - 1 or
                len(set(self.label_slots)) != len(self.label_slots) or
                min(self.label_slots) < 0):
            raise ValueError(
                f'label_slots={label_slots!r}: need {len(classes) - 1} '
                'distinct entries >= 0, one per foreground class.')
        self.label_seg_map_path = label_seg_map_path
        self.xml_dir = xml_dir
        self.require_masks = require_masks
        self.skip_empty = (not test_mode) if skip_empty is None \
            else skip_empty
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            metainfo=metainfo,
            test_mode=test_mode,
            reduce_zero_label=False,
            **kwargs)

    @classmethod
    def get_label_map(cls, new_classes: Optional[Sequence] = None):
        """No remapping: ``metainfo['classes']`` lists the mask ids."""
        return None

    # -- files (through mmengine's file backends: backend_args) -------------
    def _exists(self, path: str) -> bool:
        return fileio.exists(path, backend_args=self.backend_args)

    def _get(self, path: str) -> bytes:
        return fileio.get(path, backend_args=self.backend_args)

    @property
    def _local(self) -> bool:
        return isinstance(fileio.get_file_backend(
            self.data_root or '.', backend_args=self.backend_args),
            fileio.LocalBackend)

    # -- paths -------------------------------------------------------------
    def _join_prefix(self):
        super()._join_prefix()
        for attr in ('label_file', 'label_seg_map_path', 'xml_dir'):
            value = getattr(self, attr)
            if value is not None and not osp.isabs(value):
                setattr(self, attr, osp.join(self.data_root, value))

    # -- labels --------------------------------------------------------------
    @property
    def foreground_classes(self) -> tuple:
        return tuple(self._metainfo['classes'][1:])

    def _multi_hot(self, names: Sequence[str], source: str) -> np.ndarray:
        labels = np.zeros(len(self.foreground_classes), np.float32)
        for name in names:
            if name not in self.foreground_classes:
                raise ValueError(
                    f'{source} names class {name!r}, which is not one of the '
                    f'dataset\'s classes {self.foreground_classes}')
            labels[self.foreground_classes.index(name)] = 1.0
        return labels

    def _labels_from_mask(self, path: str) -> np.ndarray:
        values = np.unique(read_mask(self._get(path), path))
        num_classes = len(self._metainfo['classes'])
        check_mask_values(values, num_classes, path, self.ignore_index)
        labels = np.zeros(num_classes - 1, np.float32)
        ids = [int(v) for v in values if 0 < v < num_classes]
        labels[[i - 1 for i in ids]] = 1.0
        return labels

    def _labels_from_annotation(self, img_id: str) -> Optional[np.ndarray]:
        """Labels from the per-image annotation (VOC XML), None if absent."""
        path = osp.join(self.xml_dir, img_id + '.xml')
        if not self._exists(path):
            return None
        try:
            root = ET.fromstring(self._get(path))
        except ET.ParseError as e:
            raise ValueError(f'cannot parse the XML annotation {path}: {e}')
        names = [obj.findtext('name', '').strip()
                 for obj in root.iter('object')]
        return self._multi_hot(names, f'XML annotation {path}')

    def _annotation_source(self) -> str:
        return f'{self.xml_dir} (VOC XML)'

    def _load_label_file(self) -> dict:
        """The label_file's table: {id: [class names]} (JSON) or {id:
        multi-hot array} (.npy)."""
        if not self._exists(self.label_file):
            raise FileNotFoundError(
                f'label_file {self.label_file} does not exist; give a JSON '
                'file {img_id: [class names]}, an .npy dict {img_id: '
                'multi-hot array}, or leave label_file unset')
        if not self.label_file.endswith('.npy'):
            return json.loads(self._get(self.label_file))
        table = np.load(io.BytesIO(self._get(self.label_file)),
                        allow_pickle=True)
        if table.dtype != object or table.shape != () or \
                not isinstance(table.item(), dict):
            raise ValueError(
                f'label_file {self.label_file} holds a {table.dtype} array '
                f'of shape {table.shape}; expected a pickled dict {{img_id: '
                f'multi-hot array}} (np.save of the dict), as cls_labels.npy')
        return table.item()

    def _label_file_keys(self, img_id: str) -> Tuple[str, ...]:
        """Keys an image may have in label_file: its id, and its file name
        (the authors' loader tries both)."""
        return img_id, img_id + self.img_suffix

    def _labels_from_array(self, values, img_id: str) -> np.ndarray:
        """(K,) float32 labels from a label_file array."""
        values = np.asarray(values, np.float32).reshape(-1)
        num_fg = len(self.foreground_classes)
        width = num_fg if self.label_slots is None else \
            max(self.label_slots) + 1
        if (self.label_slots is None and len(values) != num_fg) or \
                len(values) < width:
            raise ValueError(
                f'label_file {self.label_file}: the array of {img_id} has '
                f'{len(values)} entries, but the dataset has {num_fg} '
                'foreground classes' + (
                    '' if self.label_slots is None else
                    f' read from entries up to {width - 1} (label_slots)') +
                '; set label_slots to the entry of each class (e.g. '
                'WeakTr\'s 90 COCO slots: weaktr_coco_class_slots)')
        if not np.isin(values, (0.0, 1.0)).all():
            raise ValueError(
                f'label_file {self.label_file}: the array of {img_id} holds '
                f'{sorted(set(values.tolist()) - {0.0, 1.0})}; expected a '
                'multi-hot array of 0 and 1')
        if self.label_slots is not None:
            values = values[list(self.label_slots)]
        return values

    def _image_labels(self, img_id, label_table, label_mask_dir):
        if label_table is not None:
            key = next((k for k in self._label_file_keys(img_id)
                        if k in label_table), None)
            if key is None:
                raise KeyError(f'image {img_id} has no entry in label_file '
                               f'{self.label_file} (tried keys '
                               f'{list(self._label_file_keys(img_id))})')
            if isinstance(label_table[key], (list, tuple)) and all(
                    isinstance(n, str) for n in label_table[key]):
                return self._multi_hot(label_table[key],
                                       f'label_file {self.label_file}')
            return self._labels_from_array(label_table[key], img_id)
        if label_mask_dir is not None:
            path = osp.join(label_mask_dir, img_id + self.seg_map_suffix)
            if self._exists(path):
                return self._labels_from_mask(path)
        labels = self._labels_from_annotation(img_id)
        if labels is None:
            raise FileNotFoundError(
                f'no image labels for {img_id}: no mask in {label_mask_dir} '
                f'and no annotation in {self._annotation_source()}; give a '
                'label_file or the masks / annotations')
        return labels

    # -- the list ------------------------------------------------------------
    def _read_ids(self) -> List[str]:
        if not self.ann_file or not self._exists(self.ann_file):
            raise FileNotFoundError(
                f'image list ann_file={self.ann_file!r} does not exist; give '
                'a text file of image ids (e.g. ImageSets/Segmentation/'
                'train.txt relative to data_root)')
        ids = read_image_list(self._get(self.ann_file).decode())
        if not ids:
            raise ValueError(f'image list {self.ann_file} is empty')
        return ids

    def _check_images(self, ids: List[str], img_dir: str) -> None:
        paths = [osp.join(img_dir, i + self.img_suffix) for i in ids]
        missing = [i for i, p in zip(ids, paths) if not self._exists(p)]
        if missing:
            raise FileNotFoundError(
                f'{len(missing)} of {len(ids)} images in {self.ann_file} are '
                f'missing from {img_dir} (suffix {self.img_suffix!r}), e.g. '
                f'{missing[:5]}; check data_root, data_prefix.img_path, '
                'img_suffix, or convert/download the dataset')
        if not self._local:
            return  # reading every file's end from remote storage is costly
        for img_id, path in zip(ids, paths):
            problem = check_image_file(path)
            if problem is not None:
                raise OSError(f'image {path} (id {img_id}) is unusable: '
                              f'{problem}. Re-download or re-extract it, or '
                              f'remove {img_id} from {self.ann_file}.')

    def _check_masks(self, ids: List[str], seg_dir: Optional[str]) -> None:
        """Raise unless every listed image has its mask in ``seg_dir``."""
        if not seg_dir or not fileio.isdir(seg_dir,
                                           backend_args=self.backend_args):
            raise FileNotFoundError(
                f'the mask folder data_prefix.seg_map_path={seg_dir!r} does '
                f'not exist, but every image of {self.ann_file} needs its '
                'mask (require_masks=True); check the path (e.g. the '
                'pseudo-mask folder of the export)')
        missing = [i for i in ids if not self._exists(
            osp.join(seg_dir, i + self.seg_map_suffix))]
        if missing:
            raise FileNotFoundError(
                f'{len(missing)} of {len(ids)} images of {self.ann_file} have '
                f'no mask in {seg_dir} (suffix {self.seg_map_suffix!r}), e.g. '
                f'{missing[:5]}; finish the export of that folder or point '
                'data_prefix.seg_map_path at complete masks')

    def load_data_list(self) -> List[dict]:
        """One data info per listed image (see the class docstring)."""
        img_dir = self.data_prefix.get('img_path', '')
        seg_dir = self.data_prefix.get('seg_map_path', None)
        label_mask_dir = self.label_seg_map_path or seg_dir
        ids = self._read_ids()
        self._check_images(ids, img_dir)
        if self.require_masks:
            self._check_masks(ids, seg_dir)
        label_table = (self._load_label_file()
                       if self.label_file is not None else None)

        data_list, empty = [], []
        for img_id in tqdm(ids, desc=f'labels of {osp.basename(self.ann_file)}',
                           unit='img', leave=False,
                           disable=len(ids) < 2000):
            seg_map_path = None
            if seg_dir is not None:
                path = osp.join(seg_dir, img_id + self.seg_map_suffix)
                seg_map_path = path if self._exists(path) else None
            labels = self._image_labels(img_id, label_table, label_mask_dir)
            if self.skip_empty and not labels.any():
                empty.append(img_id)
                continue
            data_list.append(dict(
                img_path=osp.join(img_dir, img_id + self.img_suffix),
                seg_map_path=seg_map_path,
                img_id=img_id,
                gt_class_labels=labels,
                num_classes=len(self._metainfo['classes']),
                label_map=None,
                reduce_zero_label=False,
                seg_fields=[]))
        if empty:
            print_log(f'{self.__class__.__name__}: skipped {len(empty)} of '
                      f'{len(ids)} images of {self.ann_file} with no '
                      f'foreground class (e.g. {empty[:3]})', logger='current')
        if not data_list:
            raise ValueError(f'no image of {self.ann_file} has a foreground '
                             'class; check the labels or set skip_empty=False')
        return data_list


@DATASETS.register_module()
class PascalVOCWSSSDataset(VOCLayoutWSSSDataset):
    """PASCAL VOC 2012 (20 classes + background), image labels from the
    masks (``SegmentationClass`` or the ``SegmentationClassAug`` of
    ``tools/dataset_converters/voc_aug.py``) or the XML annotations; see
    :class:`VOCLayoutWSSSDataset`."""
    METAINFO = dict(
        classes=('background', 'aeroplane', 'bicycle', 'bird', 'boat',
                 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
                 'diningtable', 'dog', 'horse', 'motorbike', 'person',
                 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor'),
        palette=palette_for(21))
