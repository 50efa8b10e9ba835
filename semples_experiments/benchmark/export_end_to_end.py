"""The whole pseudo-mask export on a folder of random VOC-layout images:
data loading, inference, PNG writing, as ``PseudoLabelHook`` and
``tools/make_pseudo_labels.py`` run it (:func:`export_pseudo_masks`)."""
import os
import os.path as osp
import tempfile
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from semples_mm.pseudo_labels import export_pseudo_masks, in_order_loader_cfg
from semples_mm.utils.mask_png import save_mask_png

def write_random_voc(root: str, num_images: int, num_classes: int,
                     image_size: Sequence[int], seed: int = 0) -> str:
    """Random JPEG images and masks in VOC layout (kept if already there).

    Names carry the size, class count and seed
    (``random_375x500_20cls_seed0_000000``), so one folder can hold sets of
    several sizes and a kept set is never taken for another. Image ``i`` is a smooth random colour field with noise (so its JPEG is
    neither trivially small nor pure noise), its mask holds 1-3 rectangles
    of random foreground classes on background; the list is written last,
    so a folder with a list is complete.

    Args:
        root (str): folder of ``JPEGImages/``, ``SegmentationClass/`` and
            ``ImageSets/Segmentation/<set name>.txt``.
        num_images (int): N.
        num_classes (int): K foreground classes (mask ids 1..K).
        image_size (Sequence[int]): (H, W) of every image.
        seed (int): seed of the content.

    Returns:
        str: the list file, relative to ``root``.
    """
    height, width = (int(v) for v in image_size)
    name = f'random_{height}x{width}_{num_classes}cls_seed{seed}'
    ann_file = f'ImageSets/Segmentation/{name}.txt'
    ids = [f'{name}_{i:06d}' for i in range(num_images)]
    list_path = osp.join(root, ann_file)
    if osp.exists(list_path):
        with open(list_path) as f:
            if f.read().split() == ids:
                return ann_file
    rng = np.random.default_rng(seed)
    for folder in ('JPEGImages', 'SegmentationClass',
                   'ImageSets/Segmentation'):
        os.makedirs(osp.join(root, folder), exist_ok=True)
    for img_id in ids:
        field = Image.fromarray(
            rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize(
                (width, height), Image.BILINEAR)
        pixels = np.asarray(field, dtype=np.int16) + rng.integers(
            -12, 13, (height, width, 3), dtype=np.int16)
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(
            osp.join(root, 'JPEGImages', f'{img_id}.jpg'), quality=90)
        mask = np.zeros((height, width), dtype=np.uint8)
        for class_id in rng.choice(num_classes, int(rng.integers(1, 4)),
                                   replace=False) + 1:
            top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
            mask[top:top + height // 3, left:left + width // 3] = class_id
        save_mask_png(mask, osp.join(root, 'SegmentationClass',
                                     f'{img_id}.png'))
    with open(list_path, 'w') as f:
        f.write('\n'.join(ids) + '\n')
    return ann_file


def export_dataloader_cfg(cfg, data_root: str, ann_file: str,
                          batch_size: int,
                          num_workers: Optional[int] = None) -> dict:
    """The config's ``val_dataloader`` (what the export reads) pointed at
    ``data_root``: JPEG images, masks and labels from
    ``SegmentationClass``, in order, at ``batch_size``. A synthetic world's
    dataset becomes the plain VOC-layout dataset it is built on (nothing is
    generated)."""
    loader = in_order_loader_cfg(cfg.val_dataloader, ann_file,
                                 batch_size, num_workers)
    dataset = loader['dataset'] = dict(loader['dataset'])
    if dataset.pop('synthetic_world', None) is not None:
        dataset['type'] = 'VOCLayoutWSSSDataset'
    dataset.pop('label_file', None)
    dataset.update(
        data_root=data_root, img_suffix='.jpg', seg_map_suffix='.png',
        data_prefix=dict(img_path='JPEGImages',
                         seg_map_path='SegmentationClass'),
        label_seg_map_path='SegmentationClass')
    return loader


def time_export_end_to_end(model, cfg, num_images: int,
                           image_size: Sequence[int], batch_size: int,
                           settings: dict,
                           num_workers: Optional[int] = None,
                           data_root: Optional[str] = None,
                           seed: int = 0) -> dict:
    """Export pseudo masks of ``num_images`` random images and time it.

    Args:
        model: a built SemPLeS model (weights do not change the timing).
        cfg (Config): its config; the export reads its ``val_dataloader``.
        num_images (int): images to write and export.
        image_size (Sequence[int]): (H, W) of the images.
        batch_size (int): images per dataloader batch.
        settings (dict): export settings (``export_settings``).
        num_workers (int, optional): dataloader workers; default the
            config's.
        data_root (str, optional): where the images are (made and) kept;
            default a temporary folder, removed afterwards.
        seed (int): seed of the images.

    Returns:
        dict: ``num_images``, ``seconds`` and ``images_per_s`` of the export
        (data loading, inference and PNG writing; the dataset's label
        reading before it is excluded), ``batch_size``, ``num_workers``,
        ``image_size``.
    """
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    num_classes = model.cam_head.num_classes
    with tempfile.TemporaryDirectory(prefix='semples_export_') as scratch:
        root = data_root or osp.join(scratch, 'data')
        ann_file = write_random_voc(root, num_images, num_classes,
                                    image_size, seed)
        loader_cfg = export_dataloader_cfg(cfg, root, ann_file, batch_size,
                                           num_workers)
        with DefaultScope.overwrite_default_scope(
                cfg.get('default_scope', 'mmseg')):
            dataloader = Runner.build_dataloader(loader_cfg, seed=seed)
            summary = export_pseudo_masks(
                model, dataloader, osp.join(scratch, 'masks'), settings,
                progress=False)
    return dict(num_images=summary['num_written'],
                seconds=summary['seconds'],
                images_per_s=summary['images_per_s'],
                batch_size=batch_size,
                num_workers=loader_cfg.get('num_workers', 0),
                image_size=[int(v) for v in image_size])
