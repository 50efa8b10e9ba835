"""``bg_threshold='val'``: the background threshold chosen on the
validation split's threshold sweep (its ground truth may choose settings;
the training list's may not)."""
import copy
import os.path as osp

import torch
from mmengine.model import is_model_wrapper

from ..models.cams import CAMInference
from .export import (build_evaluator, infer_batch_cams, metric_sample,
                     metric_value, to_builtin)
from .output_guard import dataset_has_masks
from .settings import VAL_THRESHOLD, inference_settings


def choose_val_threshold(model, val_dataloader, settings: dict,
                         metric: dict) -> tuple:
    """One pass over the validation split: its CAMs (the export's inference
    settings) scored by ``metric``'s threshold sweep, no files written.

    Under torch.distributed each rank infers its shard; the metric gathers
    the counts, so every rank gets the same threshold.

    Args:
        model (BaseModel): has ``data_preprocessor`` and ``predict_cams``.
        val_dataloader (Iterable[dict]): the validation split, with
            ``gt_sem_seg`` for every image (pseudo_collate batches).
        settings (dict): export settings (``bg_threshold`` is ignored).
        metric (dict): the sweep, e.g. ``dict(type='PseudoMaskMetric',
            bg_thresholds=(0.10, 0.70, 0.01))``.

    Returns:
        tuple: the chosen threshold (float) and its record ``dict(rule=
        'val', split, ann_file, num_images, mIoU, best_at_sweep_edge)``:
        ``mIoU`` is the validation sweep's best (at the threshold chosen).
    """
    model = model.module if is_model_wrapper(model) else model
    dataset = getattr(val_dataloader, 'dataset', None)
    if dataset is None or not dataset_has_masks(dataset):
        ann_file = getattr(dataset, 'ann_file', None)
        raise ValueError(
            f"bg_threshold='{VAL_THRESHOLD}' chooses the threshold on the "
            "validation split's ground truth, but not every image of "
            f'val_dataloader.dataset (ann_file {ann_file!r}) has a mask '
            '(or the dataset cannot say): point val_dataloader at a split '
            'with masks, or give pseudo_label_cfg.bg_threshold a number '
            '(--bg-threshold 0.45).')
    evaluator = build_evaluator([copy.deepcopy(metric)], dataset)
    inference = CAMInference(**inference_settings(settings))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in val_dataloader:
                samples = batch['data_samples']
                cams = infer_batch_cams(model, inference, batch['inputs'],
                                        samples)
                evaluator.process([metric_sample(sample, norm)
                                   for sample, norm in zip(samples, cams)],
                                  batch)
    finally:
        model.train(was_training)
    metrics = evaluator.evaluate(len(dataset))
    threshold = metric_value(metrics, 'bg_threshold')
    if threshold is None:
        threshold = metric_value(metrics, 'best_threshold')
    if threshold is None:
        raise KeyError(f"bg_threshold='{VAL_THRESHOLD}': the metric "
                       f"{metric.get('type')!r} reports no bg_threshold or "
                       'best_threshold; use PseudoMaskMetric in '
                       'val_evaluator.')
    ann_file = getattr(dataset, 'ann_file', None)
    return float(threshold), dict(
        rule=VAL_THRESHOLD,
        split=osp.splitext(osp.basename(ann_file))[0] if ann_file else None,
        ann_file=osp.abspath(ann_file) if ann_file else None,
        num_images=len(dataset),
        mIoU=to_builtin(metric_value(metrics, 'mIoU')),
        best_at_sweep_edge=to_builtin(
            metric_value(metrics, 'best_at_sweep_edge')))
