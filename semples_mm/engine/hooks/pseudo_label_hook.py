"""Writes pseudo masks at the end of training or of a training phase."""
import copy
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...pseudo_labels import (VAL_THRESHOLD, choose_val_threshold,
                              config_annotation_dirs, dataset_has_masks,
                              export_pseudo_masks, export_settings,
                              in_order_loader_cfg, pseudo_mask_metric,
                              score_words, update_summary_file)
from ...utils.models import phase_schedule


def build_export_dataloader(runner, dataloader_cfg=None, ann_file=None,
                            batch_size=None, num_workers=None):
    """An in-order dataloader for export, from a config dict.

    Args:
        runner (Runner): gives the seed and, without ``dataloader_cfg``, the
            config's ``val_dataloader``.
        dataloader_cfg (dict, optional): mmengine dataloader config.
        ann_file (str, optional): replaces ``dataset.ann_file``.
        batch_size, num_workers (int, optional): replace the config's.

    Returns:
        DataLoader: with ``DefaultSampler(shuffle=False)``, so that under
        torch.distributed every rank gets its own shard.
    """
    cfg = dataloader_cfg if dataloader_cfg is not None else \
        runner.cfg.get('val_dataloader')
    if not isinstance(cfg, dict):
        raise ValueError(
            'PseudoLabelHook needs a dataloader config: pass dataloader=dict('
            '...) or define val_dataloader in the config')
    return runner.build_dataloader(
        in_order_loader_cfg(cfg, ann_file, batch_size, num_workers),
        seed=runner.seed)


@HOOKS.register_module()
class PseudoLabelHook(Hook):
    """Export pseudo masks with :func:`export_pseudo_masks` during training.

    Writes ``<work_dir>/pseudo_masks/<label>/<img_id>.png`` and sets
    ``summary[label]`` in ``<work_dir>/summary.json`` (image count, split,
    settings, images/s, and with ground truth the best threshold and mIoU of
    ``metric``). The export runs once: after iteration ``after_iter`` (1-based
    count of finished iterations), at the end of phase ``phase`` (from the
    model's phase schedule), or, with neither, after training. Existing PNGs
    are kept, so an export cut short finishes on the next run.

    The export settings (scales, flip, threshold, CRF, batch size, ...)
    resolve when the export runs, by :func:`export_settings`: the model's
    ``test_cfg``, then the config's ``pseudo_label_cfg``, then the settings
    given to this hook, so one hook config serves every experiment.

    Args:
        label (str): name of this export, e.g. 'cam' or 'semples'.
        after_iter (int, optional): export once this many iterations ran.
        phase (str, optional): export at the end of this model phase.
        dataloader (dict, optional): dataloader config; default: the
            config's ``val_dataloader``. Its sampler is replaced by an
            in-order DefaultSampler.
        ann_file (str, optional): image list replacing the dataset's.
        split (str, optional): split name for the summary; default: the
            stem of the ann_file.
        metric (dict | str, optional): metric config fed the CAMs and
            ground truth; used only when every image has a mask. Default
            'val_evaluator': the config's ``PseudoMaskMetric`` (its
            threshold sweep), as every export scores; None: no metric.
        out_dir (str, optional): output folder; default
            ``<work_dir>/pseudo_masks/<label>``.
        summary_file (str): JSON file name inside work_dir.
        overwrite (bool): the folder belongs to this run, so masks of
            another export found there (e.g. of the run before a restart
            from scratch) are removed, with a log line; False refuses.
        **settings: export settings that override the config's
            (``scales``, ``flip``, ``bg_threshold``, ``crf``, ``amp``,
            ``batch_size``, ...; see ``pseudo_labels.EXPORT_KEYS``).
            ``bg_threshold='val'``: first a pass over the config's
            ``val_dataloader`` with ``metric`` (a dict) or the config's
            ``PseudoMaskMetric``; the masks are written at its best
            threshold (``choose_val_threshold``).
    """

    priority = 'LOW'

    def __init__(self,
                 label='semples',
                 after_iter=None,
                 phase=None,
                 dataloader=None,
                 ann_file=None,
                 split=None,
                 metric='val_evaluator',
                 out_dir=None,
                 summary_file='summary.json',
                 overwrite=True,
                 **settings):
        if after_iter is not None and phase is not None:
            raise ValueError('PseudoLabelHook: give after_iter or phase, not '
                             f'both (got {after_iter} and {phase!r})')
        if after_iter is not None and (not isinstance(after_iter, int)
                                       or after_iter < 1):
            raise ValueError('PseudoLabelHook: after_iter counts finished '
                             f'iterations and must be >= 1, got {after_iter}')
        export_settings({}, **settings)  # unknown or bad settings fail here
        if not (metric is None or metric == 'val_evaluator'
                or isinstance(metric, dict)):
            raise ValueError(
                f"PseudoLabelHook: metric must be a metric config dict, "
                f"'val_evaluator' or None, got {metric!r}")
        self.label = label
        self.after_iter = after_iter
        self.phase = phase
        self.dataloader = dataloader
        self.ann_file = ann_file
        self.split = split
        self.settings = settings
        self.metric = metric
        self.out_dir = out_dir
        self.summary_file = summary_file
        self.overwrite = overwrite
        self._export_iter = None
        self.summary = None

    def before_train(self, runner):
        self._export_iter = self.after_iter
        if self.phase is not None:
            schedule = phase_schedule(
                runner.model, f'PseudoLabelHook(phase={self.phase!r})')
            self._export_iter = schedule[self.phase].end

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if self._export_iter is not None and \
                runner.iter + 1 == self._export_iter:
            self.export(runner, finished_iters=runner.iter + 1)

    def after_train(self, runner):
        if self._export_iter is None:
            self.export(runner)

    def _metric_cfg(self, runner) -> dict:
        """The metric config: ``metric`` itself, or for 'val_evaluator'
        (and for the ``bg_threshold='val'`` pass when ``metric`` is None)
        the config's ``PseudoMaskMetric``."""
        if isinstance(self.metric, dict):
            return copy.deepcopy(self.metric)
        return pseudo_mask_metric(runner.cfg)

    def export(self, runner, finished_iters=None):
        """Run the export now; returns (and stores) its summary.

        ``finished_iters`` (default ``runner.iter``) is recorded as ``iter``.
        """
        settings = export_settings(runner.cfg, **self.settings)
        threshold_choice = None
        if settings['bg_threshold'] == VAL_THRESHOLD:
            settings['bg_threshold'], threshold_choice = \
                choose_val_threshold(
                    runner.model, build_export_dataloader(
                        runner, None, None, settings['batch_size'],
                        settings['num_workers']), settings,
                    self._metric_cfg(runner))
        dataloader = build_export_dataloader(
            runner, self.dataloader, self.ann_file, settings['batch_size'],
            settings['num_workers'])
        dataset = dataloader.dataset
        evaluator = None
        if self.metric is not None:
            if dataset_has_masks(dataset):
                evaluator = [self._metric_cfg(runner)]
            else:
                runner.logger.warning(
                    f'PseudoLabelHook[{self.label}]: not every image of the '
                    'export split has a mask, so the pseudo masks are written '
                    'but not scored')
        split = self.split or osp.splitext(
            osp.basename(getattr(dataset, 'ann_file', '') or 'images'))[0]
        out_dir = self.out_dir or osp.join(runner.work_dir, 'pseudo_masks',
                                           self.label)
        runner.logger.info(f'PseudoLabelHook[{self.label}]: writing pseudo '
                           f'masks of {split} to {out_dir}')
        summary = export_pseudo_masks(
            runner.model, dataloader, out_dir, settings, evaluator=evaluator,
            split=split, overwrite=self.overwrite,
            protected_dirs=config_annotation_dirs(runner.cfg),
            threshold_choice=threshold_choice)
        summary['iter'] = runner.iter if finished_iters is None \
            else finished_iters
        if is_main_process():
            update_summary_file(
                osp.join(runner.work_dir, self.summary_file), self.label,
                summary)
        runner.logger.info(
            f"PseudoLabelHook[{self.label}]: {summary['num_images']} images "
            f"({summary['num_written']} written, {summary['num_skipped']} "
            f"already there), {summary['images_per_s']} images/s"
            f"{score_words(summary)}")
        self.summary = summary
        return summary
