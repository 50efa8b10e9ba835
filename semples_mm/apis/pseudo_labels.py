"""Write the pseudo masks of a dataset split from a trained CAM model."""
import copy
import os
import os.path as osp
from contextlib import nullcontext
from typing import Optional, Union

import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmseg.registry import DATASETS, MODELS

from ..pseudo_labels import (VAL_THRESHOLD, choose_val_threshold,
                             config_annotation_dirs, dataset_has_masks,
                             export_pseudo_masks, export_settings,
                             in_order_loader_cfg, pseudo_mask_metric,
                             score_words, update_summary_file)
from ..utils.checkpoints import load_model_weights
from ..utils.launch import is_rank_zero, start_process_group
from ..utils.work_dir_lock import WorkDirLock

# The keys a CAM model's checkpoint must hold for an export.
CAM_NETWORK_PREFIXES = ('backbone.', 'neck.', 'cam_head.')

# transforms that need a mask file; dropped when a split lacks masks
MASK_TRANSFORMS = ('LoadAnnotations', 'CheckSegMapValues')


def split_ann_file(split: str) -> str:
    """'train' -> 'ImageSets/Segmentation/train.txt'; paths pass through."""
    if '/' in split or split.endswith('.txt'):
        return split
    return f'ImageSets/Segmentation/{split}.txt'


def build_split_dataset(dataloader_cfg: dict, ann_file: str):
    """The split's dataset, without the mask transforms if some image has no
    mask. Returns (dataset, has_masks)."""
    dataset_cfg = copy.deepcopy(dataloader_cfg['dataset'])
    dataset_cfg['ann_file'] = ann_file
    dataset = DATASETS.build(dataset_cfg)
    has_masks = dataset_has_masks(dataset)
    if not has_masks:
        dataset.pipeline = Compose([
            t for t in dataset_cfg.get('pipeline', [])
            if t.get('type') not in MASK_TRANSFORMS])
        print_log(f'{ann_file}: not every image has a mask, so the masks are '
                  'written without loading ground truth or scoring',
                  logger='current')
    return dataset, has_masks


def _export_loader_cfg(dataloader_cfg, settings: dict) -> dict:
    """An in-order copy of a dataloader config (a dict or ConfigDict) at
    the export's ``batch_size`` and ``num_workers``."""
    return in_order_loader_cfg(
        dataloader_cfg.to_dict() if hasattr(dataloader_cfg, 'to_dict')
        else dataloader_cfg, batch_size=settings['batch_size'],
        num_workers=settings['num_workers'])


def make_pseudo_labels(config: Union[str, Config], checkpoint: str,
                       out_dir: str, split: str = 'train',
                       label: Optional[str] = None,
                       work_dir: Optional[str] = None,
                       dataloader: str = 'val', evaluate: bool = True,
                       device: Optional[str] = None, launcher: str = 'none',
                       progress: bool = True,
                       cfg_options: Optional[dict] = None,
                       dataloader_cfg: Optional[dict] = None,
                       metric: Optional[dict] = None,
                       overwrite: bool = False,
                       cams_dir: Optional[str] = None,
                       cams_format: str = 'weaktr',
                       **overrides) -> dict:
    """Export the pseudo masks of ``split`` and record them.

    Settings resolve by ``export_settings``: the model's ``test_cfg``, the
    config's ``pseudo_label_cfg``, then ``overrides``. Images come from the
    config's ``<dataloader>_dataloader`` with the split's image list. With
    ground truth for every image (and ``evaluate``), the pseudo-mask mIoU
    over the threshold sweep is computed in the same pass. With
    ``bg_threshold='val'`` (``pseudo_label_cfg`` or ``overrides``), a pass
    over the config's ``val_dataloader`` (its own image list, ground truth
    for every image) scores the CAMs over the metric's sweep first, and the
    masks are written at its best threshold (:func:`choose_val_threshold`;
    recorded as ``bg_threshold_choice``). The summary goes
    under ``label`` (default: the out folder's name) into
    ``<work_dir>/summary.json``.

    Args:
        config (str | Config): config of the CAM model.
        checkpoint (str): its weights.
        out_dir (str): folder of the PNG masks.
        split (str): 'train', 'val', 'trainaug' (ImageSets/Segmentation/
            <split>.txt) or an image-list path relative to data_root.
        dataloader (str): 'val' or 'test'.
        evaluate (bool): score the masks when every image has ground truth.
        device (str, optional): default cuda when available, else cpu.
        launcher (str): 'none', 'pytorch' or 'slurm' (every rank writes
            its shard); the process group stays up (see ``train``).
        dataloader_cfg (dict, optional): the dataloader to read instead of
            the config's ``<dataloader>_dataloader``.
        metric (dict, optional): instead of the config's PseudoMaskMetric.
        overwrite (bool): replace the masks of another export in
            ``out_dir`` instead of refusing.
        cams_dir (str, optional): also write each image's CAM score maps
            there (``export_pseudo_masks``).
        cams_format (str): 'weaktr' (.npy, WeakTr / SemPLeS authors) or
            'fma-wsss' (.npz).
        **overrides: export settings (``pseudo_labels.EXPORT_KEYS``).

    The checkpoint must hold every key of the CAM network (backbone, neck,
    head) with the model's shapes; the work dir is locked while the export
    runs; the masks never go into a folder any dataset of the config reads
    masks or labels from.

    Returns:
        dict: the export summary, with the checkpoint.
    """
    cfg = copy.deepcopy(config) if isinstance(config, Config) else \
        Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    settings = export_settings(cfg, **overrides)
    work_dir = work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', osp.splitext(osp.basename(cfg.filename))[0])
    with WorkDirLock(work_dir, 'make_pseudo_labels') if is_rank_zero() \
            else nullcontext():
        start_process_group(launcher)
        if dataloader_cfg is None:
            loader_key = f'{dataloader}_dataloader'
            if not isinstance(cfg.get(loader_key), dict):
                raise KeyError(f'{cfg.filename} has no {loader_key}; the '
                               'images of the split are read through it')
            dataloader_cfg = cfg[loader_key]
        loader_cfg = _export_loader_cfg(dataloader_cfg, settings)
        dataset, has_masks = build_split_dataset(loader_cfg,
                                                 split_ann_file(split))
        loader = Runner.build_dataloader(dict(loader_cfg, dataset=dataset),
                                         seed=0)
        device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
        if device == 'cuda':
            device = f'cuda:{int(os.environ.get("LOCAL_RANK", 0))}'
        model = MODELS.build(cfg.model)
        load_model_weights(model, checkpoint, required=CAM_NETWORK_PREFIXES)
        model.to(device)
        metric = metric or pseudo_mask_metric(cfg)
        threshold_choice = None
        if settings['bg_threshold'] == VAL_THRESHOLD:
            settings['bg_threshold'], threshold_choice = _val_threshold(
                cfg, model, settings, metric)
            print_log(f"bg_threshold='val': {settings['bg_threshold']} "
                      f"(validation sweep best mIoU "
                      f"{threshold_choice['mIoU']} on "
                      f"{threshold_choice['ann_file']})", logger='current')
        evaluator = [metric] if evaluate and has_masks else None
        summary = export_pseudo_masks(
            model, loader, out_dir, settings, evaluator=evaluator,
            split=split, progress=progress, overwrite=overwrite,
            checkpoint=osp.abspath(checkpoint),
            protected_dirs=config_annotation_dirs(cfg), cams_dir=cams_dir,
            cams_format=cams_format, threshold_choice=threshold_choice)
        summary['checkpoint'] = osp.abspath(checkpoint)
        if is_main_process():
            label = label or osp.basename(osp.normpath(out_dir))
            update_summary_file(osp.join(work_dir, 'summary.json'), label,
                                summary)
            print_log(
                f"{summary['num_images']} images of {split} -> "
                f"{summary['out_dir']} ({summary['num_written']} written, "
                f"{summary['num_skipped']} already there, "
                f"{summary['images_per_s']} images/s)"
                f"{score_words(summary)}; summary in "
                f"{osp.join(work_dir, 'summary.json')}['{label}']",
                logger='current')
    return summary


def _val_threshold(cfg, model, settings, metric):
    """``bg_threshold='val'``: the best threshold of ``metric``'s sweep on
    the config's ``val_dataloader`` (its own image list)."""
    loader_cfg = cfg.get('val_dataloader')
    if not isinstance(loader_cfg, dict):
        raise KeyError(
            f"pseudo_label_cfg.bg_threshold='{VAL_THRESHOLD}' scores the "
            f'validation split, but {cfg.filename} has no val_dataloader; '
            'add one whose images have ground-truth masks, or give a number '
            '(--bg-threshold 0.45).')
    loader_cfg = _export_loader_cfg(loader_cfg, settings)
    # built as configured: choose_val_threshold names missing masks
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    return choose_val_threshold(model, loader, settings, metric)
