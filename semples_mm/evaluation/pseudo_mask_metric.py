"""mIoU of CAM pseudo masks over a sweep of background thresholds."""
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Union

import logging

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from prettytable import PrettyTable

from mmseg.registry import METRICS

ThresholdSpec = Union[Sequence[float], tuple, dict, None]


def make_thresholds(spec: ThresholdSpec) -> List[float]:
    """Background thresholds from a list, a range tuple or a range dict.

    Args:
        spec: None for the SemPLeS sweep 0.40, 0.41, ..., 0.59; a tuple
            ``(start, stop, step)`` or a dict ``dict(start=, stop=, step=)``
            for an inclusive range; a list for explicit thresholds.

    Returns:
        list[float]: thresholds, rounded to 6 decimals (no float drift in
        the keys of the curve).
    """
    if spec is None:
        spec = dict(start=0.40, stop=0.59, step=0.01)
    elif isinstance(spec, tuple):
        if len(spec) != 3:
            raise ValueError(
                'PseudoMaskMetric: a tuple bg_thresholds means (start, stop, '
                f'step), got {spec!r}; give a list for explicit thresholds.')
        spec = dict(start=spec[0], stop=spec[1], step=spec[2])
    if isinstance(spec, dict):
        start, stop, step = spec['start'], spec['stop'], spec['step']
        if step <= 0 or stop < start:
            raise ValueError(
                f'PseudoMaskMetric: bg_thresholds range {spec!r} is empty; '
                'need step > 0 and stop >= start.')
        count = int(np.floor((stop - start) / step + 1e-6)) + 1
        values = [start + i * step for i in range(count)]
    else:
        values = list(spec)
        if not values:
            raise ValueError('PseudoMaskMetric: bg_thresholds is empty.')
    return [round(float(v), 6) for v in values]


def _field(sample: Any, key: str) -> torch.Tensor:
    """``sample[key].data`` for a dict (as the Evaluator passes) or a
    data element."""
    if isinstance(sample, dict):
        if key not in sample:
            raise KeyError(
                f'PseudoMaskMetric: the data sample has no {key!r}; the model '
                'must fill data_sample.cam (PixelData, (K, H, W) normalised '
                'CAMs) and the pipeline gt_sem_seg (PackWSSSInputs).')
        return sample[key]['data']
    return getattr(sample, key).data


@METRICS.register_module()
class PseudoMaskMetric(BaseMetric):
    """CAM pseudo-mask mIoU for each background threshold; keeps the best.

    For every threshold t, the mask is ``argmax([t, cam_1, ..., cam_K])``
    (ties go to background), and intersections and unions are accumulated
    for the K + 1 classes. Each data sample must carry ``cam``
    (PixelData, data (K, H, W): normalised, label-restricted CAMs in [0, 1])
    and ``gt_sem_seg`` (data (1, H, W), ids 0..K, ``ignore_index`` ignored).

    Per sample, only the per-threshold intersection and prediction areas
    and the ground-truth area are kept (not the maps), so results gather
    cheaply across processes.

    Args:
        bg_thresholds (list | tuple | dict, optional): see
            :func:`make_thresholds`. Defaults to 0.40..0.59 step 0.01.
        ignore_index (int): ground-truth id to skip. Defaults to 255.
        collect_device (str): 'cpu' or 'gpu' for gathering results.
        prefix (str, optional): prefix of the metric names. Defaults to
            'pseudo', so the metric runs beside mmseg's IoUMetric (whose
            'mIoU' would otherwise clash in one evaluator).

    Metrics returned by :meth:`compute_metrics` (keys get the prefix, e.g.
    ``pseudo/mIoU``): ``mIoU`` (best, %), ``bg_threshold`` (its threshold,
    the first listed on ties), ``best_at_sweep_edge`` (bool: the best mIoU
    is reached at the lowest or the highest threshold of the sweep, ties
    included, so the curve may still rise beyond it and ``mIoU`` is only a
    lower bound of the best; a warning says so and tells to widen
    ``bg_thresholds``; always False for a single threshold, which is no
    sweep),
    ``mIoU_curve`` ({threshold: mIoU %}) and ``IoU_per_class`` ({class
    name: IoU % at the best threshold}).
    """
    default_prefix = 'pseudo'

    def __init__(self,
                 bg_thresholds: ThresholdSpec = None,
                 ignore_index: int = 255,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix,
                         **kwargs)
        self.bg_thresholds = make_thresholds(bg_thresholds)
        self.ignore_index = ignore_index

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Accumulate per-threshold confusion counts of each sample.

        Each result is a tuple of int64 arrays: intersection (T, K + 1),
        predicted area (T, K + 1) and ground-truth area (K + 1,).
        """
        for sample in data_samples:
            cams = _field(sample, 'cam')
            gt = _field(sample, 'gt_sem_seg').squeeze(0).to(cams.device)
            self.results.append(self._sample_counts(cams, gt))

    def _sample_counts(self, cams: torch.Tensor, gt: torch.Tensor) -> tuple:
        """Counts for one sample; cams (K, H, W), gt (H, W)."""
        if cams.dim() != 3 or cams.shape[1:] != gt.shape:
            raise ValueError(
                f'PseudoMaskMetric: cam of shape {tuple(cams.shape)} does not '
                f'match gt_sem_seg of shape {tuple(gt.shape)}; cams must be '
                '(K, H, W) at the ground-truth resolution.')
        num_classes = cams.shape[0] + 1
        gt = gt.flatten().long()
        ignored = gt == self.ignore_index
        bad = (gt < 0) | (gt >= num_classes)
        if bool((bad & ~ignored).any()):
            raise ValueError(
                f'PseudoMaskMetric: gt_sem_seg holds id '
                f'{int(gt[bad & ~ignored].max())} but the cam has only '
                f'{num_classes - 1} foreground classes.')
        # ignored pixels go to an extra gt row, dropped below (cheaper than
        # boolean indexing of the K maps)
        gt = gt.masked_fill(ignored, num_classes)
        best_score, best_class = cams.flatten(1).max(dim=0)  # (N,)
        # A pixel is class best_class + 1 at threshold t iff best_score > t
        # (ties go to background), so it is enough to know how many sorted
        # thresholds lie strictly below its score: one histogram over
        # (gt, best class, that count) gives every threshold's counts, in
        # O(N + C K T) instead of O(N T).
        thresholds = torch.tensor(
            self.bg_thresholds, dtype=best_score.dtype,
            device=best_score.device)
        sorted_thr, order = thresholds.sort()
        num_t = len(self.bg_thresholds)
        num_fg = num_classes - 1
        below = torch.searchsorted(sorted_thr, best_score.contiguous(),
                                   side='left')  # (N,) in 0..T
        hist = torch.bincount(
            (gt * num_fg + best_class) * (num_t + 1) + below,
            minlength=(num_classes + 1) * num_fg * (num_t + 1)).view(
                num_classes + 1, num_fg, num_t + 1)[:num_classes]
        # fg[g, c, i]: pixels of gt g predicted c + 1 at sorted threshold i
        suffix = hist.flip(-1).cumsum(-1).flip(-1)  # sum over below >= j
        fg = suffix[:, :, 1:]  # below > i
        gt_area = hist.sum(dim=(1, 2))  # (C,)
        fg_pred_area = fg.sum(dim=0)  # (K, T)
        fg_intersect = fg[1:].diagonal(dim1=0, dim2=1).t()  # (K, T)
        bg_pred_area = gt_area.sum() - fg_pred_area.sum(dim=0)  # (T,)
        bg_intersect = gt_area[0] - fg[0].sum(dim=0)  # (T,)
        intersect = torch.cat([bg_intersect[None], fg_intersect]).t()
        pred_area = torch.cat([bg_pred_area[None], fg_pred_area]).t()
        # back from sorted to the configured threshold order
        unsort = order.argsort()
        return (intersect[unsort].cpu().numpy(),
                pred_area[unsort].cpu().numpy(),
                gt_area.cpu().numpy())

    def compute_metrics(self, results: list) -> Dict[str, Any]:
        """Best mIoU over the thresholds, the whole curve, per-class IoU."""
        if not results:
            raise ValueError('PseudoMaskMetric: no sample was processed.')
        sizes = {r[2].shape[0] for r in results}
        if len(sizes) != 1:
            raise ValueError('PseudoMaskMetric: samples disagree on the '
                             f'number of classes: {sorted(sizes)}.')
        gt_area = np.sum([r[2] for r in results], axis=0).astype(np.float64)
        if gt_area.sum() == 0:
            raise ValueError('PseudoMaskMetric: every ground-truth pixel is '
                             f'ignore_index={self.ignore_index}.')
        intersect = np.sum([r[0] for r in results], axis=0).astype(np.float64)
        pred_area = np.sum([r[1] for r in results], axis=0).astype(np.float64)
        union = pred_area + gt_area[None] - intersect
        with np.errstate(divide='ignore', invalid='ignore'):
            iou = intersect / union  # (T, C); NaN where a class never occurs
        miou = np.nanmean(iou, axis=1) * 100
        best = int(np.nanargmax(miou))
        class_names = self._class_names(iou.shape[1])
        curve = OrderedDict(
            (t, round(float(m), 2)) for t, m in zip(self.bg_thresholds, miou))
        per_class = OrderedDict(
            (name, round(float(v) * 100, 2))
            for name, v in zip(class_names, iou[best]))
        best_threshold = self.bg_thresholds[best]
        self._log_tables(curve, per_class, best_threshold)
        at_edge = self._warn_if_at_sweep_edge(miou, best)
        return dict(
            mIoU=round(float(miou[best]), 2),
            bg_threshold=best_threshold,
            best_at_sweep_edge=at_edge,
            mIoU_curve=dict(curve),
            IoU_per_class=dict(per_class))

    def _warn_if_at_sweep_edge(self, miou: np.ndarray, best: int) -> bool:
        """Whether the best mIoU is reached at an end of the sweep (ties
        included: on a plateau that touches an end, the curve has not been
        seen to fall on that side); warns if so."""
        thresholds = self.bg_thresholds
        low, high = min(thresholds), max(thresholds)
        if low == high:
            return False
        edges = [(t, side, beyond)
                 for t, side, beyond in ((low, 'lowest', 'below'),
                                         (high, 'highest', 'above'))
                 if miou[thresholds.index(t)] >= miou[best]]
        if not edges:
            return False
        threshold, side, beyond = edges[0]
        print_log(
            f'PseudoMaskMetric: the best mIoU {miou[best]:.2f} is reached at '
            f'background threshold {threshold:g}, the {side} of the sweep '
            f'[{low:g}, {high:g}], so it is only a lower bound of the best: '
            f'a threshold {beyond} {threshold:g} may score higher. Widen '
            f'bg_thresholds {beyond} {threshold:g} and evaluate again.',
            logger=MMLogger.get_current_instance(), level=logging.WARNING)
        return True

    def _class_names(self, num_classes: int) -> List[str]:
        names = (self.dataset_meta or {}).get('classes')
        if names is None:
            return ['background'] + [f'class_{k}' for k in range(
                num_classes - 1)]
        if len(names) != num_classes:
            raise ValueError(
                f'PseudoMaskMetric: dataset_meta has {len(names)} classes '
                f'(background included) but the cams give {num_classes}; '
                'the model num_classes must be the foreground count K.')
        return list(names)

    @staticmethod
    def _log_tables(curve: Dict[float, float], per_class: Dict[str, float],
                    best_threshold: float) -> None:
        logger = MMLogger.get_current_instance()
        curve_table = PrettyTable(['bg threshold', 'mIoU'])
        for threshold, value in curve.items():
            curve_table.add_row([f'{threshold:.2f}', value])
        class_table = PrettyTable(['Class', 'IoU'])
        for name, value in per_class.items():
            class_table.add_row([name, value])
        print_log('pseudo-mask mIoU per background threshold:\n' +
                  curve_table.get_string(), logger=logger)
        print_log(f'per-class IoU at bg threshold {best_threshold:.2f}:\n' +
                  class_table.get_string(), logger=logger)
