"""The synthetic world on disk: scenes drawn per image from a seed and
written in PASCAL VOC layout, atomically, with a ``world.json`` that says
how it was made.

The world has SemPLeS's co-occurrence problem: the context of a class
covers a large part of the background in most of its images, so an
image-level classifier can lean on it and its CAMs fire on the context.
"""
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from ...utils.mask_png import save_mask_png
from .renderer import SYNTHETIC_CLASSES, SYNTHETIC_CONTEXTS, SyntheticRenderer

# Bumped whenever the drawing changes, so a stale world on disk is detected.
WORLD_FORMAT_VERSION = 1
IMAGE_SUFFIX = '.png'  # lossless: the image holds exactly the rendered pixels
SEG_MAP_SUFFIX = '.png'


def sample_scene(rng: np.random.Generator,
                 context_prob: float = 0.85,
                 two_object_prob: float = 0.35) -> Tuple[List[int], Optional[int]]:
    """Draw the content of one world image: (object indices, context index).

    1 or 2 objects of different classes; with probability ``context_prob``
    the context of one of the objects, otherwise (evenly) no context or a
    context that belongs to none of the objects.
    """
    num_classes = len(SYNTHETIC_CLASSES)
    count = 2 if rng.uniform() < two_object_prob else 1
    objects = [int(i) for i in rng.choice(num_classes, count, replace=False)]
    if rng.uniform() < context_prob:
        # Context index i belongs to class index i.
        context = objects[int(rng.integers(0, count))]
    elif rng.uniform() < 0.5:
        context = None
    else:
        others = [c for c in range(num_classes) if c not in objects]
        context = int(others[int(rng.integers(0, len(others)))])
    return objects, context


_SPLIT_CODE = {'train': 0, 'val': 1}


def _world_params(seed, num_train, num_val, image_size, context_prob):
    return dict(seed=int(seed), num_train=int(num_train),
                num_val=int(num_val), image_size=int(image_size),
                context_prob=float(context_prob),
                format_version=WORLD_FORMAT_VERSION)


def world_mismatch(root: str, seed: int = 0, num_train: int = 2000,
                   num_val: int = 300, image_size: int = 64,
                   context_prob: float = 0.85) -> Optional[str]:
    """Why the world in ``root`` differs from these settings, or None."""
    with open(osp.join(root, 'world.json')) as f:
        meta = json.load(f)
    wanted = _world_params(seed, num_train, num_val, image_size, context_prob)
    diffs = [f'{key}={meta.get(key)!r} (wanted {value!r})'
             for key, value in wanted.items() if meta.get(key) != value]
    return ', '.join(diffs) or None


def _write_world(tmp_root, params, progress):
    renderer = SyntheticRenderer(params['image_size'])
    for sub in ('JPEGImages', 'SegmentationClass',
                osp.join('ImageSets', 'Segmentation')):
        os.makedirs(osp.join(tmp_root, sub))
    images: Dict[str, dict] = {}
    counts = dict(train=params['num_train'], val=params['num_val'])
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=sum(counts.values()), desc='synthetic world',
                   unit='img', leave=False)
    for split, count in counts.items():
        ids = []
        for index in range(count):
            # One generator per image: an image depends only on
            # (seed, split, index), not on how many others are drawn.
            rng = np.random.default_rng(
                [params['seed'], _SPLIT_CODE[split], index])
            objects, context = sample_scene(rng, params['context_prob'])
            image, mask = renderer.render(rng, objects, context)
            img_id = f'{split}_{index:05d}'
            cv2.imwrite(osp.join(tmp_root, 'JPEGImages', img_id + IMAGE_SUFFIX),
                        cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            save_mask_png(mask, osp.join(tmp_root, 'SegmentationClass',
                                             img_id + SEG_MAP_SUFFIX))
            visible = sorted(int(v) - 1 for v in np.unique(mask) if v > 0)
            images[img_id] = dict(
                objects=[SYNTHETIC_CLASSES[i] for i in visible],
                context=None if context is None else
                SYNTHETIC_CONTEXTS[context])
            ids.append(img_id)
            if bar is not None:
                bar.update()
        with open(osp.join(tmp_root, 'ImageSets', 'Segmentation',
                           f'{split}.txt'), 'w') as f:
            f.write(''.join(i + '\n' for i in ids))
    if bar is not None:
        bar.close()
    meta = dict(classes=list(SYNTHETIC_CLASSES),
                contexts=list(SYNTHETIC_CONTEXTS), **params,
                image_suffix=IMAGE_SUFFIX, seg_map_suffix=SEG_MAP_SUFFIX,
                images=images)
    with open(osp.join(tmp_root, 'world.json'), 'w') as f:
        json.dump(meta, f, indent=1, sort_keys=True)


def generate_config_worlds(cfg) -> list:
    """Generate the synthetic worlds a config's dataloaders read (datasets
    with ``synthetic_world`` settings and a ``data_root``) that do not exist
    yet; returns their folders. Safe in several processes at once (see
    :func:`generate_synthetic_world`)."""
    roots = []
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = (cfg.get(key) or {}).get('dataset') or {}
        settings, root = dataset.get('synthetic_world'), dataset.get(
            'data_root')
        if settings is None or root is None or root in roots:
            continue
        generate_synthetic_world(root, **dict(settings))
        roots.append(root)
    return roots


def generate_synthetic_world(root: str,
                             seed: int = 0,
                             num_train: int = 2000,
                             num_val: int = 300,
                             image_size: int = 64,
                             context_prob: float = 0.85,
                             overwrite: bool = False,
                             progress: bool = True) -> str:
    """Write the synthetic world in PASCAL VOC layout under ``root``.

    Layout: ``JPEGImages/<id>.png`` (lossless PNG despite the folder name, so
    the files hold exactly the rendered pixels), ``SegmentationClass/<id>.png``
    (VOC palette PNGs, 0 background, class index + 1),
    ``ImageSets/Segmentation/{train,val}.txt`` and ``world.json``. Ids are
    ``train_00000`` ... and ``val_00000`` ....

    The output is a pure function of the arguments (byte-identical files).
    The world is built in a temporary folder beside ``root`` and renamed into
    place, so concurrent calls never leave a half-written world: the first
    rename wins and the others discard their copy.

    If ``root`` already holds a world with the same settings, nothing is
    written; with other settings a ``FileExistsError`` says what differs,
    unless ``overwrite=True``.

    Returns:
        str: ``root``.
    """
    if num_train < 1 or num_val < 0:
        raise ValueError(f'num_train={num_train}, num_val={num_val}: need '
                         'num_train >= 1 and num_val >= 0')
    if not 0.0 <= context_prob <= 1.0:
        raise ValueError(f'context_prob={context_prob} must be in [0, 1]')
    root = osp.abspath(root)
    params = _world_params(seed, num_train, num_val, image_size, context_prob)

    def existing_world_ok():
        if not osp.isdir(root) or not os.listdir(root):
            return False
        if not osp.isfile(osp.join(root, 'world.json')):
            raise FileExistsError(
                f'{root} exists and is not a synthetic world (no world.json); '
                'remove it or choose another root')
        diff = world_mismatch(root, seed, num_train, num_val, image_size,
                              context_prob)
        if diff is None:
            return True
        if overwrite:
            return False
        raise FileExistsError(
            f'{root} holds a synthetic world with other settings: {diff}. '
            'Delete the folder, choose another root, or pass overwrite=True.')

    if existing_world_ok():
        return root
    parent = osp.dirname(root)
    os.makedirs(parent, exist_ok=True)
    tmp_root = tempfile.mkdtemp(prefix=f'.{osp.basename(root)}.tmp-',
                                dir=parent)
    try:
        _write_world(tmp_root, params, progress)
        os.chmod(tmp_root, 0o755)
        if overwrite and osp.isdir(root) and os.listdir(root):
            trash = tempfile.mkdtemp(prefix=f'.{osp.basename(root)}.old-',
                                     dir=parent)
            os.rename(root, osp.join(trash, 'world'))
            shutil.rmtree(trash, ignore_errors=True)
        try:
            os.rename(tmp_root, root)  # atomic; fails if root is non-empty
        except OSError:
            # Another process renamed its world into place first.
            if not existing_world_ok():
                raise
    finally:
        if osp.isdir(tmp_root):
            shutil.rmtree(tmp_root, ignore_errors=True)
    return root
