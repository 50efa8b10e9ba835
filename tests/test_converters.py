"""Dataset converters on tiny hand-made inputs."""
import json
import os.path as osp
import sys

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from PIL import Image
from pycocotools import mask as coco_mask
from scipy.io import savemat

import semples_mm.datasets  # noqa: F401  (registers)
from mmseg.registry import DATASETS

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'tools', 'dataset_converters'))
import coco2014  # noqa: E402
import voc_aug  # noqa: E402

init_default_scope('mmseg')


def _write_list(path, ids):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(i + '\n' for i in ids))


def _save_gtcls(path, segmentation):
    gtcls = np.zeros((1, 1), dtype=[('Segmentation', object),
                                     ('Boundaries', object),
                                     ('CategoriesPresent', object)])
    gtcls[0, 0]['Segmentation'] = segmentation
    gtcls[0, 0]['Boundaries'] = np.zeros((1, 1), object)
    gtcls[0, 0]['CategoriesPresent'] = np.unique(segmentation[segmentation > 0])
    savemat(path, {'GTcls': gtcls})


def test_voc_aug(tmp_path):
    voc, sbd = tmp_path / 'VOC2012', tmp_path / 'sbd'
    (voc / 'SegmentationClass').mkdir(parents=True)
    (sbd / 'cls').mkdir(parents=True)
    sets = voc / 'ImageSets' / 'Segmentation'
    _write_list(sets / 'train.txt', ['t1', 'both'])
    _write_list(sets / 'val.txt', ['v1'])
    _write_list(sbd / 'train.txt', ['s1', 'v1'])
    _write_list(sbd / 'val.txt', ['s2', 'both'])
    sbd_masks = {}
    for k, img_id in enumerate(['s1', 's2', 'v1', 'both']):
        seg = np.zeros((6, 5), np.uint8)
        seg[1:3, 1:4] = k + 3
        sbd_masks[img_id] = seg
        _save_gtcls(str(sbd / 'cls' / f'{img_id}.mat'), seg)
    voc_masks = {}
    for img_id in ['t1', 'v1', 'both']:
        seg = np.zeros((6, 5), np.uint8)
        seg[4, :] = 20
        seg[0, 0] = 255
        voc_masks[img_id] = seg
        img = Image.fromarray(seg, 'P')
        img.putpalette([0] * 768)
        img.save(voc / 'SegmentationClass' / f'{img_id}.png')

    ids = voc_aug.build_trainaug(str(voc), str(sbd))
    assert ids == ['both', 's1', 's2', 't1']  # v1 (VOC val) left out
    assert (sets / 'trainaug.txt').read_text().split() == ids
    out = voc / 'SegmentationClassAug'
    for img_id in ['s1', 's2', 't1', 'v1', 'both']:
        image = Image.open(out / f'{img_id}.png')
        assert image.mode == 'P'
        expected = voc_masks.get(img_id, sbd_masks.get(img_id))
        assert np.array_equal(np.array(image), expected), img_id

    (sbd / 'cls' / 's2.mat').unlink()
    savemat(str(sbd / 'cls' / 's2.mat'), {'GTinst': np.zeros((2, 2))})
    with pytest.raises(KeyError, match=r's2\.mat has no GTcls'):
        voc_aug.build_trainaug(str(voc), str(sbd))


def _compressed_rle(mask):
    """A binary mask as COCO's JSON files store a compressed RLE: counts a
    text string."""
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=rle['size'], counts=rle['counts'].decode('ascii'))


def test_every_coco_segmentation_form_decodes():
    # 3 x 4 image, column-major runs: 2 bg, 3 fg, 7 bg.
    expected = np.zeros((3, 4), np.uint8)
    expected[2, 0] = expected[0, 1] = expected[1, 1] = 1
    assert np.array_equal(coco2014.annotation_to_mask(
        dict(size=[3, 4], counts=[2, 3, 7]), 3, 4), expected)
    assert np.array_equal(coco2014.annotation_to_mask(
        _compressed_rle(expected), 3, 4), expected)
    # a polygon of two parts: two unit-area boxes' pixel centres
    square = coco2014.annotation_to_mask(
        [[0, 0, 2, 0, 2, 2, 0, 2], [3, 1, 4, 1, 4, 3, 3, 3]], 3, 4)
    assert square[:2, :2].all() and square[1:3, 3].all()
    assert square.sum() == 6
    with pytest.raises(ValueError, match='size'):
        coco2014.annotation_to_mask(_compressed_rle(expected), 4, 3)


def _tiny_coco(root):
    (root / 'annotations').mkdir(parents=True)
    (root / 'train2014').mkdir()
    images = []
    for k in range(3):
        name = f'COCO_train2014_{k + 1:012d}.jpg'
        Image.fromarray(np.full((8, 10, 3), 100, np.uint8)).save(
            root / 'train2014' / name)
        images.append(dict(id=k + 1, file_name=name, height=8, width=10))
    # Category ids are not contiguous: sorted order 3, 7, 90 -> ids 1, 2, 3
    # (80 more categories would be realistic; three keep it tiny).
    categories = [dict(id=90, name='c90'), dict(id=3, name='c3'),
                  dict(id=7, name='c7')]
    crowd = np.zeros((8, 10), np.uint8)
    crowd[:, :2] = 1  # columns 0-1
    annotations = [
        # big box of category 7 on image 1, with a small category-3 on top
        dict(id=1, image_id=1, category_id=7, iscrowd=0, area=30,
             segmentation=[[1, 1, 7, 1, 7, 6, 1, 6]]),
        dict(id=2, image_id=1, category_id=3, iscrowd=0, area=4,
             segmentation=[[2, 2, 4, 2, 4, 4, 2, 4]]),
        # image 2: a crowd region of category 90 (-> 255) and category 90
        dict(id=3, image_id=2, category_id=90, iscrowd=1, area=16,
             segmentation=_compressed_rle(crowd)),
        dict(id=4, image_id=2, category_id=90, iscrowd=0, area=6,
             segmentation=[[6, 0, 8, 0, 8, 2, 6, 2]]),
        # image 3: nothing
    ]
    with open(root / 'annotations' / 'instances_train2014.json', 'w') as f:
        json.dump(dict(images=images, annotations=annotations,
                       categories=categories), f)


def test_coco2014_converter_and_dataset(tmp_path):
    root = tmp_path / 'coco'
    _tiny_coco(root)
    assert coco2014.convert_split(str(root), 'train2014') == 3
    out = root / 'SegmentationClass' / 'train2014'
    m1 = np.array(Image.open(out / 'COCO_train2014_000000000001.png'))
    assert m1.shape == (8, 10)
    assert m1[3, 3] == 1  # category 3, painted after the larger one
    assert m1[5, 6] == 2 and m1[0, 0] == 0
    m2 = np.array(Image.open(out / 'COCO_train2014_000000000002.png'))
    assert (m2[:, :2] == 255).all() and m2[1, 7] == 3 and m2[5, 5] == 0
    m3 = np.array(Image.open(out / 'COCO_train2014_000000000003.png'))
    assert not m3.any()
    assert (root / 'ImageSets' / 'train2014.txt').read_text().split() == [
        f'COCO_train2014_{k:012d}' for k in (1, 2, 3)]

    classes = ('background', 'c3', 'c7', 'c90')
    common = dict(type='COCOWSSSDataset', data_root=str(root),
                  ann_file='ImageSets/train2014.txt',
                  metainfo=dict(classes=classes))
    dataset = DATASETS.build(common)  # labels from the masks
    labels = [dataset.get_data_info(i)['gt_class_labels'].tolist()
              for i in range(len(dataset))]
    assert labels == [[1, 1, 0], [0, 0, 1]]  # empty image 3 skipped
    # Labels from the instances json when there are no masks.
    from_json = DATASETS.build(dict(
        common, data_prefix=dict(img_path='train2014', seg_map_path='none'),
        instances_file='annotations/instances_train2014.json'))
    assert [from_json.get_data_info(i)['gt_class_labels'].tolist()
            for i in range(len(from_json))] == labels
    assert from_json.get_data_info(0)['seg_map_path'] is None
