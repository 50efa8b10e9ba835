"""Pseudo-mask export: the model's CAM inference over a dataloader, a mask
writer, and optionally a metric fed the same CAMs."""
import os.path as osp
import time

import numpy as np
import torch
from mmengine.dist import all_reduce, barrier, get_dist_info
from mmengine.evaluator import Evaluator
from mmengine.model import is_model_wrapper
from mmengine.structures import PixelData
from mmseg.registry import METRICS
from mmseg.structures import SegDataSample
from tqdm import tqdm

from ..models.cams import CAMInference, unpad
from ..utils.atomic_file import remove_stale_temp_files
from .cam_writer import CamWriter, check_cams_format
from .crf import require_pydensecrf
from .manifest import claim_out_dir, export_producer, finish_manifest
from .output_guard import check_output_dir, dataset_annotation_dirs
from .settings import (VAL_THRESHOLD, describe, export_settings,
                       inference_settings)
from .writer import MaskWriter


def sample_image_id(data_sample) -> str:
    """``img_id`` of a data sample, else the stem of its ``img_path``."""
    metainfo = data_sample.metainfo
    if metainfo.get('img_id') is not None:
        return str(metainfo['img_id'])
    if metainfo.get('img_path'):
        return osp.splitext(osp.basename(metainfo['img_path']))[0]
    raise KeyError('a data sample has neither img_id nor img_path in its '
                   'metainfo; add img_id with PackWSSSInputs(meta_keys=...)')


def infer_batch_cams(model, inference: CAMInference, inputs, data_samples):
    """CAMs of images as the dataloader yields them (mixed sizes allowed).

    Each image is preprocessed on its own (no padding to a common size);
    :class:`CAMInference` then runs the images of one size together.

    Args:
        model: has ``data_preprocessor`` and ``predict_cams``.
        inference (CAMInference): scales, flip, eps, amp.
        inputs (Sequence[Tensor]): (3, H_i, W_i) images.
        data_samples (Sequence[SegDataSample]): with ``gt_class_labels``
            and ``ori_shape``.

    Returns:
        list[Tensor]: per image (K, H_ori, W_ori), on the model's device.
    """
    if not inputs:
        return []
    images = []
    for image, sample in zip(inputs, data_samples):
        if 'gt_class_labels' not in sample:
            raise KeyError(f'data sample {sample_image_id(sample)!r} has no '
                           'gt_class_labels; pack the samples with '
                           'PackWSSSInputs')
        data = model.data_preprocessor(
            dict(inputs=[image], data_samples=[sample]), False)
        images.append(unpad(data['inputs'], data['data_samples'][0].metainfo))
    labels = torch.stack([s.gt_class_labels for s in data_samples]).float()
    return inference(model.predict_cams, images,
                     [tuple(s.metainfo['ori_shape'][:2])
                      for s in data_samples],
                     labels)


def metric_sample(data_sample, norm_cams):
    """A CPU data sample with ``cam`` and ``gt_sem_seg`` for the metric."""
    img_id = sample_image_id(data_sample)
    if 'gt_sem_seg' not in data_sample:
        raise KeyError(
            f'image {img_id!r} has no gt_sem_seg, so the pseudo-mask metric '
            'cannot score it; pass evaluator=None (or drop --eval) for splits '
            'without masks, or add LoadAnnotations to the pipeline')
    gt = data_sample.gt_sem_seg.cpu()
    if tuple(gt.shape) != tuple(norm_cams.shape[1:]):
        raise ValueError(
            f'image {img_id!r}: gt_sem_seg is {tuple(gt.shape)} but '
            f'ori_shape is {tuple(norm_cams.shape[1:])}; load the annotation '
            'at the original size (no Resize before LoadAnnotations)')
    sample = SegDataSample(metainfo=data_sample.metainfo)
    sample.gt_sem_seg = gt
    sample.cam = PixelData(data=norm_cams.cpu())
    sample.gt_class_labels = data_sample.gt_class_labels.cpu()
    return sample


def build_evaluator(evaluator, dataset):
    """An Evaluator from metric config(s), given the dataset's classes."""
    if isinstance(evaluator, (dict, list, tuple)):
        cfgs = [evaluator] if isinstance(evaluator, dict) else evaluator
        # mmseg's registry: the metrics are mmseg / semples_mm components
        evaluator = Evaluator([METRICS.build(c) if isinstance(c, dict) else c
                               for c in cfgs])
    if evaluator is not None and getattr(dataset, 'metainfo', None):
        evaluator.dataset_meta = dataset.metainfo
    return evaluator


def metric_value(metrics, name):
    """``metrics[name]`` or ``metrics['<prefix>/<name>']``; None if absent."""
    for key, value in metrics.items():
        if key == name or key.endswith('/' + name):
            return value
    return None


def written_masks_miou(curve, settings):
    """The mIoU of the PNGs as written: the sweep's value at the export's
    ``bg_threshold``, or None when the PNGs are not that argmax (CRF) or
    the sweep does not hold that threshold."""
    if settings['crf'] or not curve:
        return None
    return next((value for threshold, value in curve.items()
                 if abs(float(threshold) - settings['bg_threshold']) < 1e-6),
                None)


#: What the two mIoUs of a summary are (written into it beside them).
SCORES_NOTE = (
    'mIoU: the best over the background-threshold sweep of the CAMs (at '
    'best_threshold), the number the authors report for their CAMs; '
    'written_mIoU: the PNGs as written, at bg_threshold (None with CRF or '
    'with a bg_threshold outside the sweep)')


def score_words(summary) -> str:
    """The scores of an export summary for a log line ('' if unscored)."""
    if summary.get('mIoU') is None:
        return ''
    words = (f", sweep-best mIoU {summary['mIoU']} at bg threshold "
             f"{summary['best_threshold']}")
    if summary.get('written_mIoU') is not None:
        words += (f", written masks (bg threshold "
                  f"{summary['bg_threshold']}) mIoU {summary['written_mIoU']}")
    return words


def export_pseudo_masks(model, dataloader, out_dir, settings=None,
                        evaluator=None, split=None, protected_dirs=(),
                        progress=True, on_written=None, overwrite=False,
                        checkpoint=None, cams_dir=None, cams_format='weaktr',
                        threshold_choice=None):
    """Write ``<out_dir>/<img_id>.png`` pseudo masks for every sample.

    Per image: the model's CAMs by :class:`CAMInference` (multi-scale +
    flip, normalised at the original size, restricted to the image labels),
    then :class:`MaskWriter` (background threshold and argmax or CRF, atomic
    palette PNGs). The folder records what produced its masks
    (``.export.json``: the weights' digest, the settings, the image list):
    a restart of the same export continues (images whose PNG exists are
    skipped; with an evaluator every image is inferred, the metric needs
    its CAMs, but existing PNGs are kept), masks of another export are
    refused unless ``overwrite`` removes them first, so the folder and the
    summary always describe one export. Under torch.distributed each rank
    exports its sampler's shard (DefaultSampler with ``shuffle=False``).

    Args:
        model (BaseModel): has ``data_preprocessor`` and ``predict_cams``;
            put in eval mode for the export and restored afterwards.
        dataloader (Iterable[dict]): ``dict(inputs=[(3, H, W)],
            data_samples=[SegDataSample])`` batches (pseudo_collate).
        out_dir (str): output folder; refused if it holds ground truth.
        settings (dict, optional): export settings; missing keys take
            :func:`export_settings`' defaults.
        evaluator (Evaluator | dict | list[dict], optional): fed
            ``data_sample.cam`` (K, H, W) and ``gt_sem_seg`` of every image,
            e.g. ``dict(type='PseudoMaskMetric')``.
        split (str, optional): recorded in the summary.
        protected_dirs (Iterable[str]): folders never to write into, besides
            the dataset's own annotation folders.
        progress (bool): a progress bar on rank 0.
        on_written (callable, optional): ``on_written(img_id)`` per PNG.
        overwrite (bool): replace the masks of another export in
            ``out_dir`` instead of refusing.
        checkpoint (str, optional): the weights' file, for the record.
        cams_dir (str, optional): also write every image's CAM score maps
            (before thresholding) there, in ``cams_format``
            (:mod:`.cam_writer`: 'weaktr', the WeakTr / SemPLeS authors'
            ``.npy``, or 'fma-wsss', FMA-WSSS's ``.npz``). Every image is
            then inferred and its CAM file (re)written, so a CAM folder
            never keeps files of another export; PNGs that exist are kept.
        threshold_choice (dict, optional): how ``bg_threshold`` was chosen
            (:func:`choose_val_threshold`), recorded in the summary and the
            folder's ``.export.json`` as ``bg_threshold_choice``.

    Returns:
        dict: ``split``, ``out_dir``, ``num_images``, ``num_written``,
        ``num_skipped``, ``num_inferred``, ``seconds``, ``images_per_s``,
        the settings, ``world_size``, and with an evaluator ``metrics``,
        ``mIoU`` and ``best_threshold`` (the best of the threshold sweep),
        ``written_mIoU`` (:func:`written_masks_miou`) and ``scores_note``
        (:data:`SCORES_NOTE`); with ``cams_dir``: ``cams_dir``,
        ``cams_format`` and ``num_cams_written`` (files written, a
        duplicate the sampler pads a shard with included); with
        ``threshold_choice``: ``bg_threshold_choice``. Counts are over all
        ranks.
    """
    model = model.module if is_model_wrapper(model) else model
    if not hasattr(model, 'predict_cams'):
        raise TypeError(f'{type(model).__name__} has no predict_cams('
                        'inputs, classes); the exporter needs a CAM model '
                        '(see docs/design.md)')
    settings = export_settings({}, **(settings or {}))
    if settings['bg_threshold'] == VAL_THRESHOLD:
        raise ValueError(
            "bg_threshold='val' must be resolved before the export: "
            'make_pseudo_labels (tools/make_pseudo_labels.py) and '
            "PseudoLabelHook do so on the config's val_dataloader "
            '(choose_val_threshold); here, pass the chosen number.')
    if cams_dir is not None:
        check_cams_format(cams_format)
    inference = CAMInference(**inference_settings(settings))
    dataset = getattr(dataloader, 'dataset', None)
    evaluator = build_evaluator(evaluator, dataset)
    rank, world_size = get_dist_info()
    counts = dict(skipped=0, inferred=0)
    sampler = getattr(dataloader, 'sampler', None)
    bar = tqdm(total=len(sampler) if hasattr(sampler, '__len__') else None,
               unit='img',
               desc=f'pseudo masks -> {out_dir}', dynamic_ncols=True,
               disable=not progress or rank != 0)
    protected = set(protected_dirs) | dataset_annotation_dirs(dataset)
    check_output_dir(out_dir, protected)  # before touching the folder
    if cams_dir is not None:
        check_output_dir(cams_dir, protected)
    if settings['crf']:
        require_pydensecrf()
    producer = export_producer(model, dataset, settings, split)
    if threshold_choice is not None:
        # a record, not an input: the chosen bg_threshold is in settings
        producer['bg_threshold_choice'] = threshold_choice
    if rank == 0:
        claim_out_dir(out_dir, producer, overwrite, checkpoint)
        # a killed export's temporary files; before the barrier, so that
        # no other rank has begun writing its own
        remove_stale_temp_files(out_dir)
        if cams_dir is not None and osp.isdir(cams_dir):
            remove_stale_temp_files(cams_dir)
    barrier()
    writer = MaskWriter(
        out_dir, settings['bg_threshold'], settings['crf'],
        settings['crf_cfg'], settings['crf_workers'], protected, on_written)
    cam_writer = None if cams_dir is None else CamWriter(cams_dir,
                                                         cams_format)
    infer_all = evaluator is not None or cam_writer is not None
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    try:
        with writer, torch.no_grad():
            for batch in dataloader:
                samples = batch['data_samples']
                todo = [i for i, s in enumerate(samples) if infer_all
                        or not writer.exists(sample_image_id(s))]
                counts['skipped'] += len(samples) - len(todo)
                bar.update(len(samples) - len(todo))
                cams = infer_batch_cams(model, inference,
                                        [batch['inputs'][i] for i in todo],
                                        [samples[i] for i in todo])
                evaluated = []
                for i, norm in zip(todo, cams):
                    sample, img_id = samples[i], sample_image_id(samples[i])
                    counts['inferred'] += 1
                    if evaluator is not None:
                        evaluated.append(metric_sample(sample, norm))
                    if cam_writer is not None:
                        cam_writer.write(img_id, norm,
                                         sample.gt_class_labels)
                    if writer.exists(img_id):  # inferred for metric/CAMs
                        counts['skipped'] += 1
                    else:
                        writer.write(img_id, norm, sample.gt_class_labels,
                                     sample.metainfo.get('img_path'))
                    bar.update(1)
                if evaluated:
                    evaluator.process(evaluated, batch)
                writer.finish(block=False)
                bar.set_postfix(written=writer.num_written,
                                skipped=counts['skipped'])
    finally:
        model.train(was_training)
        bar.close()
    seconds = time.perf_counter() - start

    totals = torch.tensor([writer.num_written, counts['skipped'],
                           counts['inferred'],
                           cam_writer.num_written if cam_writer else 0,
                           seconds], dtype=torch.float64)
    all_reduce(totals, op='sum')
    written, skipped, inferred, cams_written = (int(value)
                                                for value in totals[:4])
    seconds = float(totals[4]) / world_size  # mean wall time of the ranks
    num_images = len(dataset) if hasattr(dataset, '__len__') else \
        written + skipped
    summary = dict(
        split=split, out_dir=osp.abspath(out_dir), num_images=num_images,
        num_written=written, num_skipped=skipped, num_inferred=inferred,
        seconds=round(seconds, 3),
        images_per_s=round(inferred / seconds, 3) if seconds > 0 else None,
        world_size=world_size, weights=producer['weights'],
        fingerprint=producer['fingerprint'], **describe(settings))
    if threshold_choice is not None:
        summary['bg_threshold_choice'] = threshold_choice
    if cam_writer is not None:
        summary.update(cams_dir=osp.abspath(cams_dir),
                       cams_format=cams_format, num_cams_written=cams_written)
    if evaluator is not None:
        metrics = evaluator.evaluate(num_images)
        best = metric_value(metrics, 'best_threshold')
        summary.update(
            metrics=to_builtin(metrics),
            mIoU=to_builtin(metric_value(metrics, 'mIoU')),
            # PseudoMaskMetric names it bg_threshold; others best_threshold
            best_threshold=to_builtin(
                best if best is not None else
                metric_value(metrics, 'bg_threshold')),
            written_mIoU=to_builtin(written_masks_miou(
                metric_value(metrics, 'mIoU_curve'), settings)),
            scores_note=SCORES_NOTE)
    if rank == 0:
        finish_manifest(out_dir, written + skipped)
    barrier()
    return summary


def to_builtin(value):
    """Numbers and arrays as plain Python values for JSON."""
    if isinstance(value, dict):
        return {key: to_builtin(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_builtin(item) for item in value]
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
