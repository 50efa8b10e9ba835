"""The synthetic world: renderer contract, determinism, layout, atomicity."""
import json
import os
import os.path as osp
import threading

import numpy as np
import pytest
from PIL import Image

from semples_mm.datasets.synthetic import (CONTEXT_OF_CLASS, GREY_GROUND,
                                           SYNTHETIC_CLASSES,
                                           SYNTHETIC_CONTEXTS,
                                           SyntheticRenderer, caption_for,
                                           generate_synthetic_world)


def _tree_bytes(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = f.read()
    return out


def test_constants():
    assert len(SYNTHETIC_CLASSES) >= 5
    assert len(SYNTHETIC_CONTEXTS) == len(SYNTHETIC_CLASSES)
    assert CONTEXT_OF_CLASS['boat'] == 'water'


def test_render_contract_and_determinism():
    renderer = SyntheticRenderer(64)
    image, mask = renderer.render(np.random.default_rng(3), [0, 2], 0)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert mask.shape == (64, 64) and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 1, 3}
    assert (mask == 1).any() and (mask == 3).any()
    image2, mask2 = renderer.render(np.random.default_rng(3), [0, 2], 0)
    assert np.array_equal(image, image2) and np.array_equal(mask, mask2)
    image3, _ = renderer.render(np.random.default_rng(4), [0, 2], 0)
    assert not np.array_equal(image, image3)


def test_object_sizes_in_range():
    renderer = SyntheticRenderer(64)
    rng = np.random.default_rng(0)
    widths = []
    for cls in range(len(SYNTHETIC_CLASSES)):
        for _ in range(10):
            _, mask = renderer.render(rng, [cls], None)
            cols = np.flatnonzero((mask == cls + 1).any(axis=0))
            widths.append(cols.max() - cols.min() + 1)
    assert 8 <= min(widths) and max(widths) <= 30
    assert max(widths) - min(widths) >= 10  # sizes vary


def test_context_covers_large_part_of_background():
    renderer = SyntheticRenderer(64)
    rng = np.random.default_rng(0)
    for _ in range(10):
        image, _ = renderer.render(rng, [], SYNTHETIC_CONTEXTS.index('water'))
        # Blue-dominant pixels are water: the band covers >= ~40 % of rows.
        blue = image[..., 2].astype(int) - image[..., 0].astype(int) > 50
        assert blue.mean() > 0.3, blue.mean()
    grey, mask = renderer.render(rng, [1], None, grey_background=True)
    background = grey[mask == 0].astype(np.float32).mean(0)
    assert np.abs(background - np.array(GREY_GROUND)).max() < 2.0


def test_captions():
    assert caption_for([0], 0) == 'a photo of a boat on water.'
    assert caption_for([1], None) == 'a photo of a plane.'
    assert caption_for([], 3) == 'a photo of grass.'
    assert caption_for([0, 4], None) == 'a photo of a boat and a bird.'


def test_generator_layout_and_determinism(tmp_path):
    a = generate_synthetic_world(str(tmp_path / 'a'), seed=0, num_train=40,
                                 num_val=10, progress=False)
    b = generate_synthetic_world(str(tmp_path / 'b'), seed=0, num_train=40,
                                 num_val=10, progress=False)
    c = generate_synthetic_world(str(tmp_path / 'c'), seed=1, num_train=40,
                                 num_val=10, progress=False)
    bytes_a, bytes_b, bytes_c = map(_tree_bytes, (a, b, c))
    assert bytes_a == bytes_b
    assert bytes_a.keys() == bytes_c.keys()
    assert bytes_a['JPEGImages/train_00000.png'] != \
        bytes_c['JPEGImages/train_00000.png']

    meta = json.load(open(osp.join(a, 'world.json')))
    assert meta['classes'] == list(SYNTHETIC_CLASSES)
    assert meta['contexts'] == list(SYNTHETIC_CONTEXTS)
    assert meta['seed'] == 0 and len(meta['images']) == 50
    train = open(osp.join(a, 'ImageSets/Segmentation/train.txt')).read()
    assert len(train.split()) == 40
    assert any(len(v['objects']) == 2 for v in meta['images'].values())
    for img_id, info in meta['images'].items():
        seg = Image.open(osp.join(a, 'SegmentationClass', img_id + '.png'))
        assert seg.mode == 'P'
        ids = sorted(set(np.unique(np.array(seg))) - {0})
        assert [SYNTHETIC_CLASSES[i - 1] for i in ids] == info['objects']
        assert len(set(info['objects'])) == len(info['objects'])
        assert info['context'] in SYNTHETIC_CONTEXTS + (None, )

    # Same settings again: a no-op; other settings: a clear error.
    assert generate_synthetic_world(a, seed=0, num_train=40, num_val=10,
                                    progress=False) == a
    with pytest.raises(FileExistsError, match='seed=0'):
        generate_synthetic_world(a, seed=5, num_train=40, num_val=10,
                                 progress=False)


def test_context_statistics(tmp_path):
    root = generate_synthetic_world(str(tmp_path / 'w'), seed=0,
                                    num_train=400, num_val=0, progress=False)
    images = json.load(open(osp.join(root, 'world.json')))['images']
    own = sum(info['context'] is not None and any(
        CONTEXT_OF_CLASS[o] == info['context'] for o in info['objects'])
        for info in images.values())
    assert 0.78 < own / len(images) < 0.92


def test_concurrent_generation_leaves_one_whole_world(tmp_path):
    root = str(tmp_path / 'race')
    errors = []

    def work():
        try:
            generate_synthetic_world(root, seed=2, num_train=30, num_val=5,
                                     progress=False)
        except Exception as e:  # noqa: BLE001  (reported below)
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(os.listdir(tmp_path)) == ['race']  # no temp dirs left
    ref = generate_synthetic_world(str(tmp_path / 'ref'), seed=2,
                                   num_train=30, num_val=5, progress=False)
    assert _tree_bytes(root) == _tree_bytes(ref)
