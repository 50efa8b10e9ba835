"""Pseudo-mask export: one implementation for the hook and the tool.

The images of one dataloader batch that share their size go through
:func:`multi_scale_flip_cams` together (each image and its flips at every
scale), so the dataloader's ``batch_size`` sets how many images the network
sees per pass; images of different sizes need no padding. An image's CAMs
do not depend on its batch companions mathematically, but the kernels
(oneDNN on CPUs, cuDNN on GPUs) pick their algorithm by batch shape and
thread count, so another batching may round differently and flip the odd
pixel whose score ties with the threshold (the tests allow 0.1% of the
pixels). A restart with the same ``batch_size`` infers what is left in
batches of other compositions; use ``batch_size=1`` where byte-identical
restarts matter more than speed.
"""
import copy
import multiprocessing
import os
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
from PIL import Image
from tqdm import tqdm

from ..models.heads.cam_head import cams_to_segmentation, normalize_cams
from .cam_inference import multi_scale_flip_cams
from .crf import dense_crf_labels, merge_crf_cfg, require_pydensecrf
from .output_guard import check_output_dir, dataset_annotation_dirs
from .palette import remove_stale_temp_files, save_mask_png


def sample_image_id(data_sample):
    """``img_id`` of a data sample, else the stem of its ``img_path``."""
    metainfo = data_sample.metainfo
    if metainfo.get('img_id') is not None:
        return str(metainfo['img_id'])
    if metainfo.get('img_path'):
        return osp.splitext(osp.basename(metainfo['img_path']))[0]
    raise KeyError('a data sample has neither img_id nor img_path in its '
                   'metainfo; add img_id with PackWSSSInputs(meta_keys=...)')


def _unpadded(inputs, data_sample):
    """Crop the padding a SegDataPreProcessor ``test_cfg`` added.

    Args:
        inputs (Tensor): (1, 3, H_pad, W_pad).
    """
    padding = data_sample.metainfo.get('padding_size')
    if not padding:
        return inputs
    left, right, top, bottom = padding
    height, width = inputs.shape[-2:]
    return inputs[..., top:height - bottom, left:width - right]


def bf16_autocast(predict_cams):
    """``predict_cams`` under bfloat16 autocast on its input's device.

    Only the network runs in bf16: :func:`multi_scale_flip_cams` casts its
    CAMs to fp32 before resizing and summing, and the min-max
    normalisation follows in fp32. bf16 keeps fp32's exponent range, so
    large activations cannot overflow as they could in fp16.
    """

    def predict(inputs):
        with torch.autocast(inputs.device.type, dtype=torch.bfloat16):
            return predict_cams(inputs)

    return predict


def batched_normalized_cams(model, inputs, data_samples, scales=(1.0, ),
                            flip=True, eps=1e-5, amp=False):
    """Label-restricted, min-max normalised CAMs of several images.

    Each image is preprocessed on its own (no padding to a common size);
    images that then share their size and ``ori_shape`` go through
    :func:`multi_scale_flip_cams` as one batch.

    Args:
        model: a model with ``data_preprocessor`` and ``predict_cams``.
        inputs (Sequence[Tensor]): (3, H_i, W_i) images as the dataloader
            yields them.
        data_samples (Sequence[SegDataSample]): with ``gt_class_labels``
            (K,) and ``ori_shape``.
        scales, flip: see :func:`multi_scale_flip_cams`.
        eps (float): see :func:`normalize_cams`.
        amp (bool): run the network under bf16 autocast
            (:func:`bf16_autocast`).

    Returns:
        list[Tensor]: per image (K, H_ori, W_ori), on the model's device.
    """
    predict_cams = bf16_autocast(model.predict_cams) if amp else \
        model.predict_cams
    prepared = []
    groups = {}  # (input size, ori_shape) -> image indices, in input order
    for index, (image, sample) in enumerate(zip(inputs, data_samples)):
        if 'gt_class_labels' not in sample:
            raise KeyError(
                f'data sample {sample_image_id(sample)!r} has no '
                'gt_class_labels; pack the samples with PackWSSSInputs')
        data = model.data_preprocessor(
            dict(inputs=[image], data_samples=[sample]), False)
        batch = _unpadded(data['inputs'], data['data_samples'][0])
        prepared.append(batch)
        key = (tuple(batch.shape[-2:]),
               tuple(sample.metainfo['ori_shape'][:2]))
        groups.setdefault(key, []).append(index)
    results = [None] * len(prepared)
    for (_, out_size), indices in groups.items():
        cams = multi_scale_flip_cams(
            predict_cams, torch.cat([prepared[i] for i in indices]),
            scales=scales, flip=flip, out_size=out_size)
        labels = torch.stack([
            data_samples[i].gt_class_labels for i in indices
        ]).to(cams.device)
        if labels.shape[1] != cams.shape[1]:
            raise ValueError(
                f'predict_cams gave {cams.shape[1]} class maps but '
                f'gt_class_labels has {labels.shape[1]} classes for image '
                f'{sample_image_id(data_samples[indices[0]])!r}')
        for i, norm in zip(indices, normalize_cams(cams, labels, eps=eps)):
            results[i] = norm
    return results


def compute_normalized_cams(model, inputs, data_sample, scales=(1.0, ),
                            flip=True, eps=1e-5):
    """:func:`batched_normalized_cams` of one (3, H, W) image; returns its
    (K, H_ori, W_ori) CAMs."""
    return batched_normalized_cams(model, [inputs], [data_sample], scales,
                                   flip, eps)[0]


def in_order_loader_cfg(dataloader_cfg, ann_file=None, batch_size=None,
                        num_workers=None):
    """A copy of an mmengine dataloader config for one export pass.

    Its sampler becomes ``DefaultSampler(shuffle=False)`` (every image once,
    in list order; under torch.distributed each rank gets its own shard) and
    ``persistent_workers`` is dropped (one pass: no workers to keep).

    Args:
        dataloader_cfg (dict): e.g. the config's ``val_dataloader``.
        ann_file (str, optional): replaces ``dataset.ann_file``.
        batch_size (int, optional): replaces ``batch_size``.
        num_workers (int, optional): replaces ``num_workers``.

    Returns:
        dict: the new config; ``dataloader_cfg`` is not changed.
    """
    cfg = copy.deepcopy(dict(dataloader_cfg))
    if ann_file is not None:
        cfg['dataset'] = dict(cfg['dataset'], ann_file=ann_file)
    for key, value in (('batch_size', batch_size),
                       ('num_workers', num_workers)):
        if value is not None:
            cfg[key] = value
    cfg['sampler'] = dict(type='DefaultSampler', shuffle=False)
    cfg.pop('persistent_workers', None)
    return cfg


def _crf_job(img_path, scores, candidate_ids, out_path, crf_cfg):
    """Pool worker: CRF-refine one image and write its mask."""
    image = np.asarray(Image.open(img_path).convert('RGB'))
    if image.shape[:2] != scores.shape[1:]:
        raise ValueError(
            f'{img_path} is {image.shape[:2]} but its CAMs are '
            f'{scores.shape[1:]} (ori_shape); the CRF needs the image at its '
            'original size')
    refined = dense_crf_labels(image, scores, crf_cfg)
    save_mask_png(candidate_ids[refined], out_path)
    return out_path


def _metric_value(metrics, name):
    """``metrics[name]`` or ``metrics['<prefix>/<name>']``; None if absent."""
    for key, value in metrics.items():
        if key == name or key.endswith('/' + name):
            return value
    return None


def _num_local_samples(dataloader):
    try:
        return len(dataloader.sampler)
    except (AttributeError, TypeError):
        return None


def export_pseudo_masks(model,
                        dataloader,
                        out_dir,
                        scales=(1.0, 1.2),
                        flip=True,
                        bg_threshold=0.43,
                        eps=1e-5,
                        crf=False,
                        crf_cfg=None,
                        crf_workers=None,
                        amp=False,
                        evaluator=None,
                        split=None,
                        protected_dirs=(),
                        progress=True,
                        on_written=None):
    """Write ``<out_dir>/<img_id>.png`` pseudo masks for every sample.

    Per image: CAMs over ``scales`` x (image, flip), summed, restricted to
    the image labels, min-max normalised per class
    (:func:`batched_normalized_cams`); then a constant background score
    ``bg_threshold`` as channel 0 and argmax, giving ids 0..K, optionally
    refined by a dense CRF (in a process pool). Masks are VOC palette PNGs
    written atomically; images whose PNG exists are skipped, so a restarted
    export finishes the folder (see the module docstring on rounding). Under torch.distributed
    each rank exports the shard its sampler gives it (use DefaultSampler
    with ``shuffle=False``).

    Args:
        model (BaseModel): has ``data_preprocessor`` and
            ``predict_cams(inputs (B, 3, H, W)) -> (B, K, h, w)``; it is put
            in eval mode for the export and restored afterwards.
        dataloader (Iterable[dict]): batches ``dict(inputs=[(3, H, W)],
            data_samples=[SegDataSample])`` (mmengine's pseudo_collate);
            the images of a batch that share a size are inferred together.
        out_dir (str): output folder; refused if it is a ground-truth folder.
        scales (Sequence[float]): input scales.
        flip (bool): add horizontal flips.
        bg_threshold (float): background score t.
        eps (float): min-max normalisation epsilon.
        crf (bool): refine with a dense CRF (needs pydensecrf).
        crf_cfg (dict, optional): overrides of ``crf.DEFAULT_CRF_CFG``.
        crf_workers (int, optional): CRF pool size; default: CPU count.
        amp (bool): infer the CAMs under bf16 autocast (faster on GPUs and
            on CPUs with bf16 instructions; a few boundary pixels may
            change).
        evaluator (Evaluator | dict | list[dict], optional): fed
            ``data_sample.cam`` (PixelData (K, H, W), normalised CAMs) and
            ``gt_sem_seg`` of every image, e.g.
            ``dict(type='PseudoMaskMetric', bg_thresholds=[...])``. With an
            evaluator every image is inferred (its CAMs are needed) but
            existing PNGs are kept. Every sample must then have gt_sem_seg.
        split (str, optional): recorded in the summary.
        protected_dirs (Iterable[str]): extra folders never to write into;
            the dataset's own annotation folders are always protected.
        progress (bool): show a progress bar (rank 0) with images/s.
        on_written (callable, optional): ``on_written(img_id)`` after each
            PNG is complete on disk.

    Returns:
        dict: summary with ``split``, ``out_dir``, ``num_images``,
        ``num_written``, ``num_skipped``, ``num_inferred``, ``seconds``,
        ``images_per_s``, the settings, and with an evaluator ``metrics``,
        ``mIoU`` and ``best_threshold``. Counts are over all ranks.
    """
    if is_model_wrapper(model):
        model = model.module
    if not hasattr(model, 'predict_cams'):
        raise TypeError(f'{type(model).__name__} has no predict_cams(inputs);'
                        ' the exporter needs a CAM model (see docs/design.md)')
    dataset = getattr(dataloader, 'dataset', None)
    check_output_dir(
        out_dir, set(protected_dirs) | dataset_annotation_dirs(dataset))
    if isinstance(evaluator, (dict, list, tuple)):
        metric_cfgs = [evaluator] if isinstance(evaluator, dict) else evaluator
        # mmseg's registry: the metrics are mmseg/semples_mm components
        evaluator = Evaluator([
            METRICS.build(cfg) if isinstance(cfg, dict) else cfg
            for cfg in metric_cfgs])
    if evaluator is not None and getattr(dataset, 'metainfo', None):
        evaluator.dataset_meta = dataset.metainfo
    if crf:
        require_pydensecrf()  # fail before any work is done
        crf_cfg = merge_crf_cfg(crf_cfg)

    rank, world_size = get_dist_info()
    os.makedirs(out_dir, exist_ok=True)
    if rank == 0:
        remove_stale_temp_files(out_dir)
    barrier()

    counts = dict(written=0, skipped=0, inferred=0)
    pending = []  # AsyncResult of CRF jobs, oldest first
    pool = None
    if crf:
        workers = crf_workers or os.cpu_count() or 1
        max_pending = 4 * workers  # bounds the score maps held in memory
        # fork: workers need only numpy and pydensecrf, no re-import of torch
        method = 'fork' if 'fork' in multiprocessing.get_all_start_methods() \
            else None
        pool = multiprocessing.get_context(method).Pool(workers)

    def finish_crf_jobs(block, keep=0):
        while pending and (block or pending[0].ready()) and \
                len(pending) > keep:
            out_path = pending.pop(0).get()
            counts['written'] += 1
            if on_written is not None:
                on_written(osp.splitext(osp.basename(out_path))[0])

    bar = tqdm(total=_num_local_samples(dataloader), unit='img',
               desc=f'pseudo masks -> {out_dir}',
               disable=not progress or rank != 0, dynamic_ncols=True)
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    try:
        with torch.no_grad():
            for data_batch in dataloader:
                evaluated = []
                todo = []  # (inputs, data_sample, out_path, exists)
                for inputs, data_sample in zip(data_batch['inputs'],
                                               data_batch['data_samples']):
                    out_path = osp.join(
                        out_dir, f'{sample_image_id(data_sample)}.png')
                    exists = osp.exists(out_path)
                    if exists and evaluator is None:
                        counts['skipped'] += 1
                    else:
                        todo.append((inputs, data_sample, out_path, exists))
                all_cams = batched_normalized_cams(
                    model, [item[0] for item in todo],
                    [item[1] for item in todo], scales, flip, eps, amp)
                bar.update(len(data_batch['inputs']) - len(todo))
                for (_, data_sample, out_path, exists), norm_cams in zip(
                        todo, all_cams):
                    img_id = sample_image_id(data_sample)
                    bar.update(1)
                    counts['inferred'] += 1
                    if evaluator is not None:
                        evaluated.append(
                            _metric_sample(data_sample, norm_cams))
                    if exists:
                        counts['skipped'] += 1
                    elif pool is not None:
                        present = torch.nonzero(
                            data_sample.gt_class_labels.cpu() > 0).flatten()
                        scores = torch.cat([
                            norm_cams.new_full((1, ) + norm_cams.shape[1:],
                                               bg_threshold),
                            norm_cams[present.to(norm_cams.device)]
                        ]).cpu().numpy()
                        candidate_ids = np.concatenate(
                            [[0], present.numpy() + 1]).astype(np.uint8)
                        pending.append(pool.apply_async(
                            _crf_job,
                            (data_sample.metainfo['img_path'], scores,
                             candidate_ids, out_path, crf_cfg)))
                        finish_crf_jobs(block=True, keep=max_pending)
                    else:
                        labels = cams_to_segmentation(norm_cams[None], bg_threshold)
                        save_mask_png(labels[0].cpu().numpy(), out_path)
                        counts['written'] += 1
                        if on_written is not None:
                            on_written(img_id)
                if evaluated:
                    evaluator.process(evaluated, data_batch)
                finish_crf_jobs(block=False)
                bar.set_postfix(written=counts['written'],
                                skipped=counts['skipped'])
            finish_crf_jobs(block=True)
    finally:
        model.train(was_training)
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
    seconds = time.perf_counter() - start

    totals = torch.tensor(
        [counts['written'], counts['skipped'], counts['inferred'], seconds],
        dtype=torch.float64)
    all_reduce(totals, op='sum')
    written, skipped, inferred = (int(value) for value in totals[:3])
    seconds = float(totals[3]) / world_size  # mean wall time of the ranks
    num_images = len(dataset) if dataset is not None and hasattr(
        dataset, '__len__') else written + skipped
    summary = dict(
        split=split,
        out_dir=osp.abspath(out_dir),
        num_images=num_images,
        num_written=written,
        num_skipped=skipped,
        num_inferred=inferred,
        seconds=round(seconds, 3),
        images_per_s=round(inferred / seconds, 3) if seconds > 0 else None,
        scales=[float(scale) for scale in scales],
        flip=bool(flip),
        bg_threshold=float(bg_threshold),
        crf=bool(crf),
        amp=bool(amp),
        world_size=world_size)
    if evaluator is not None:
        metrics = evaluator.evaluate(num_images)
        summary.update(
            metrics=_to_builtin(metrics),
            mIoU=_to_builtin(_metric_value(metrics, 'mIoU')),
            # PseudoMaskMetric names it bg_threshold; other metrics may say
            # best_threshold
            best_threshold=_to_builtin(
                _metric_value(metrics, 'best_threshold')
                if _metric_value(metrics, 'best_threshold') is not None else
                _metric_value(metrics, 'bg_threshold')))
    barrier()
    return summary


def _metric_sample(data_sample, norm_cams):
    """A CPU data sample with ``cam`` and ``gt_sem_seg`` for the metric."""
    if 'gt_sem_seg' not in data_sample:
        raise KeyError(
            f'image {sample_image_id(data_sample)!r} has no gt_sem_seg, so '
            'the pseudo-mask metric cannot score it; pass evaluator=None (or '
            'drop --eval) for splits without masks, or add LoadAnnotations '
            'to the pipeline')
    gt = data_sample.gt_sem_seg.cpu()
    if tuple(gt.shape) != tuple(norm_cams.shape[1:]):
        raise ValueError(
            f'image {sample_image_id(data_sample)!r}: gt_sem_seg is '
            f'{tuple(gt.shape)} but ori_shape is {tuple(norm_cams.shape[1:])};'
            ' load the annotation at the original size (no Resize before '
            'LoadAnnotations in the pipeline)')
    sample = SegDataSample(metainfo=data_sample.metainfo)
    sample.gt_sem_seg = gt
    sample.cam = PixelData(data=norm_cams.cpu())
    sample.gt_class_labels = data_sample.gt_class_labels.cpu()
    return sample


def _to_builtin(value):
    """Numbers and arrays as plain Python values for JSON."""
    if isinstance(value, dict):
        return {key: _to_builtin(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_builtin(item) for item in value]
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
