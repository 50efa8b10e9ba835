"""WSSS datasets and transforms: labels, checks, configs."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

import semples_mm.datasets  # noqa: F401  (registers)
from semples_mm.datasets import PascalVOCWSSSDataset
from semples_mm.datasets.synthetic.world import generate_config_worlds
from semples_mm.utils.mask_png import save_mask_png
from mmseg.registry import DATASETS, TRANSFORMS

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SYNTHETIC_CFG = osp.join(REPO, 'configs/_base_/datasets/synthetic_wsss.py')
init_default_scope('mmseg')


def _image(path, size=(20, 16), seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(
        path)


def _xml(path, names):
    objects = ''.join(f'<object><name>{n}</name></object>' for n in names)
    with open(path, 'w') as f:
        f.write(f'<annotation><filename>x</filename>{objects}</annotation>')


@pytest.fixture
def voc_root(tmp_path):
    """a: mask with person (15), aeroplane (1), 255; b: XML only (dog,
    person); c: mask with background only."""
    for sub in ('JPEGImages', 'SegmentationClass', 'Annotations'):
        (tmp_path / sub).mkdir()
    for i, img_id in enumerate('abc'):
        _image(tmp_path / 'JPEGImages' / f'{img_id}.jpg', seed=i)
    mask = np.zeros((20, 16), np.uint8)
    mask[2:6, 2:6] = 15
    mask[10:12, 3:9] = 1
    mask[0, :] = 255
    save_mask_png(mask, str(tmp_path / 'SegmentationClass' / 'a.png'))
    save_mask_png(np.zeros((20, 16), np.uint8),
                      str(tmp_path / 'SegmentationClass' / 'c.png'))
    _xml(tmp_path / 'Annotations' / 'b.xml', ['dog', 'person', 'dog'])
    (tmp_path / 'list.txt').write_text('a\nb\nc\n')
    return tmp_path


def _build(root, **kwargs):
    cfg = dict(type='PascalVOCWSSSDataset', data_root=str(root),
               ann_file='list.txt')
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def test_labels_from_masks_and_xml(voc_root):
    dataset = _build(voc_root)
    infos = {d['img_id']: d for d in
             (dataset.get_data_info(i) for i in range(len(dataset)))}
    assert sorted(infos) == ['a', 'b']  # c has no foreground: skipped
    a, b = infos['a'], infos['b']
    assert a['gt_class_labels'].dtype == np.float32
    assert a['gt_class_labels'].shape == (20, )
    assert np.flatnonzero(a['gt_class_labels']).tolist() == [0, 14]
    assert a['seg_map_path'].endswith('SegmentationClass/a.png')
    classes = PascalVOCWSSSDataset.METAINFO['classes']
    assert classes[12] == 'dog' and classes[15] == 'person'
    assert np.flatnonzero(b['gt_class_labels']).tolist() == [11, 14]
    assert b['seg_map_path'] is None
    assert a['reduce_zero_label'] is False and a['seg_fields'] == []


def test_skip_empty_and_label_file(voc_root):
    assert len(_build(voc_root, skip_empty=False)) == 3
    assert len(_build(voc_root, test_mode=True)) == 3
    (voc_root / 'labels.json').write_text(json.dumps(
        dict(a=['cat'], b=['bus', 'car'], c=[])))
    dataset = _build(voc_root, label_file='labels.json')
    labels = [np.flatnonzero(dataset.get_data_info(i)['gt_class_labels'])
              for i in range(len(dataset))]
    assert [x.tolist() for x in labels] == [[7], [5, 6]]


def test_missing_images_are_named(voc_root):
    (voc_root / 'list.txt').write_text('a\nb\nzz1\nzz2\n')
    with pytest.raises(FileNotFoundError, match=r"2 of 4 images.*zz1"):
        _build(voc_root)


def test_truncated_image_is_named(voc_root):
    path = voc_root / 'JPEGImages' / 'b.jpg'
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(OSError, match=r'b\.jpg.*truncated'):
        _build(voc_root)


def test_bad_mask_value_is_named(voc_root):
    save_mask_png(np.full((20, 16), 30, np.uint8),
                      str(voc_root / 'SegmentationClass' / 'c.png'))
    with pytest.raises(ValueError, match=r'c\.png.*\[30\]'):
        _build(voc_root)
    # Masks used only as targets are checked by the transform.
    check = TRANSFORMS.build(dict(type='CheckSegMapValues', num_classes=21))
    results = dict(gt_seg_map=np.array([[0, 255], [21, 3]], np.uint8),
                   seg_map_path='pseudo/x.png')
    with pytest.raises(ValueError, match=r'pseudo/x\.png.*\[21\]'):
        check(results)
    results['gt_seg_map'][1, 0] = 20
    assert check(results) is results


def test_unknown_xml_class_and_num_classes(voc_root):
    _xml(voc_root / 'Annotations' / 'b.xml', ['unicorn'])
    with pytest.raises(ValueError, match=r"b\.xml.*'unicorn'"):
        _build(voc_root)
    with pytest.raises(ValueError, match=r'num_classes=20.*21 classes'):
        _build(voc_root, num_classes=20)
    with pytest.raises(ValueError, match=r'num_fg_classes=21'):
        _build(voc_root, num_fg_classes=21)


def test_pack_without_seg_map(voc_root):
    pipeline = [dict(type='LoadImageFromFile'), dict(type='PackWSSSInputs')]
    dataset = _build(voc_root, pipeline=pipeline)
    sample = dataset[1]  # b: labels from XML, no mask
    data_sample = sample['data_samples']
    assert sample['inputs'].shape == (3, 20, 16)
    assert 'gt_sem_seg' not in data_sample
    assert data_sample.gt_class_labels.dtype == torch.float32
    assert torch.nonzero(data_sample.gt_class_labels).flatten().tolist() == \
        [11, 14]
    assert data_sample.img_id == 'b'


def test_seg_random_resized_crop_keeps_alignment():
    crop = TRANSFORMS.build(dict(type='SegRandomResizedCrop', size=(24, 32),
                                 scale=(0.2, 0.6), interpolation='nearest'))
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 6, (50, 70)).astype(np.uint8)
    img = np.repeat((mask * 40)[..., None], 3, axis=2)
    np.random.seed(0)
    for _ in range(5):
        out = crop(dict(img=img.copy(), gt_seg_map=mask.copy(),
                        seg_fields=['gt_seg_map']))
        assert out['img'].shape == (24, 32, 3)
        assert out['gt_seg_map'].shape == (24, 32)
        assert np.array_equal(out['img'][..., 0], out['gt_seg_map'] * 40)
        x0, y0, x1, y1 = out['crop_bbox']
        area = (x1 - x0) * (y1 - y0) / mask.size
        assert 0.15 < area < 0.65


def _synthetic_cfg(root, num_train=12, num_val=4, seed=0):
    cfg = Config.fromfile(SYNTHETIC_CFG)
    world = dict(seed=seed, num_train=num_train, num_val=num_val,
                 image_size=64, context_prob=0.85)
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.dataset.data_root = str(root)
        loader.dataset.synthetic_world = world
    return cfg


def test_synthetic_config_builds_consistent_samples(tmp_path):
    root = tmp_path / 'world'
    cfg = _synthetic_cfg(root)
    assert cfg.num_classes == 6 and cfg.num_fg_classes == 5
    assert len(cfg.class_names) == cfg.num_classes
    # the dataset reads a world, never makes one: it names the command
    with pytest.raises(FileNotFoundError, match=r'generate_synthetic_world'
                       r'\.py .*--num-train 12'):
        DATASETS.build(cfg.train_dataloader.dataset)
    assert generate_config_worlds(cfg) == [str(root)]
    train = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(train) == 12
    assert train.metainfo['classes'] == tuple(cfg.class_names)
    for index in range(len(train)):
        sample = train[index]
        inputs, data_sample = sample['inputs'], sample['data_samples']
        assert inputs.shape == (3, 64, 64) and inputs.dtype == torch.uint8
        seg = data_sample.gt_sem_seg.data
        assert seg.shape == (1, 64, 64)
        ids = sorted(set(seg.unique().tolist()) - {0, 255})
        labels = torch.nonzero(data_sample.gt_class_labels).flatten() + 1
        assert labels.tolist() == ids and ids
    val = DATASETS.build(cfg.val_dataloader.dataset)
    assert len(val) == 4 and val[0]['data_samples'].img_id == 'val_00000'

    other = _synthetic_cfg(root, seed=3)  # a world of another seed there
    with pytest.raises(ValueError, match=r'seed=0 \(wanted 3\)'):
        DATASETS.build(other.train_dataloader.dataset)


@pytest.mark.parametrize('name', ['voc12_wsss.py', 'coco14_wsss.py'])
def test_real_dataset_configs_parse(name):
    cfg = Config.fromfile(osp.join(REPO, 'configs/_base_/datasets', name))
    assert len(cfg.class_names) == cfg.num_classes == cfg.num_fg_classes + 1
    assert cfg.val_evaluator == dict(type='IoUMetric', iou_metrics=['mIoU'])
    assert DATASETS.get(cfg.train_dataloader.dataset.type) is not None


def test_labels_stay_ground_truth_with_pseudo_masks(tmp_path):
    root = tmp_path / 'world'
    cfg = _synthetic_cfg(root, num_train=6, num_val=1)
    generate_config_worlds(cfg)
    gt = DATASETS.build(cfg.train_dataloader.dataset)
    pseudo = tmp_path / 'pseudo'
    pseudo.mkdir()
    for i in range(len(gt)):  # all-background pseudo masks
        save_mask_png(np.zeros((64, 64), np.uint8),
                          str(pseudo / f'{gt.get_data_info(i)["img_id"]}.png'))
    cfg.train_dataloader.dataset.data_prefix.seg_map_path = str(pseudo)
    cfg.train_dataloader.dataset.skip_empty = False
    on_pseudo = DATASETS.build(cfg.train_dataloader.dataset)
    for i in range(len(gt)):
        a, b = gt.get_data_info(i), on_pseudo.get_data_info(i)
        assert np.array_equal(a['gt_class_labels'], b['gt_class_labels'])
        assert b['seg_map_path'].startswith(str(pseudo))
