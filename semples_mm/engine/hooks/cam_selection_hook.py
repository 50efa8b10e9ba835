"""Model selection inside a phase: the best CAM network by CAM mIoU."""
import copy
import json
import os.path as osp

import torch
from mmengine.dist import barrier, is_main_process
from mmengine.evaluator import Evaluator
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS, METRICS

from ...pseudo_labels import in_order_loader_cfg, pseudo_mask_metric
from ...utils.atomic_file import atomic_write
from ...utils.models import phase_schedule, unwrap_model


@HOOKS.register_module()
class BestCAMSelectionHook(Hook):
    """Keeps, in each phase of ``phases``, the CAM network with the best CAM
    mIoU, and hands it on: at the phase end the best weights are restored,
    so the pseudo-mask export of that phase and the next phase start from
    them (the authors keep the best epoch of stages 1 and 3 by CAM mIoU on
    VOC train, start stage 2 from the best stage-1 weights and export from
    the best stage-3 ones).

    Every ``interval`` iterations of a selected phase, and at its end, the
    model's CAMs of ``dataloader`` are scored with the config's
    ``PseudoMaskMetric`` (its threshold sweep) through ``model.val_step``.
    The best weights are kept in memory, in every checkpoint of the phase
    (so a resume restores the best as of that checkpoint, even when a later
    best was found before the kill) and in ``<work_dir>/best_cam_<phase>
    .pth``; every score is recorded in ``<work_dir>/cam_selection.json``.
    The training loop's phase-end validation, which runs after this hook,
    shows the restored best; this hook's log lines show each score and the
    best.

    Args:
        phases (Sequence[str]): phases to select in, e.g. ('match',
            'refine').
        interval (int, optional): iterations between evaluations; default
            one epoch of the phase's training data (its dataloader's
            dataset over its batch size and the world size, rounded
            down).
        dataloader (dict, optional): dataloader config of the split to
            score; default the config's ``val_dataloader``.
        metric_key (str): the metric to maximise.
    """
    priority = 'HIGH'  # before the phase checkpoints and exports

    def __init__(self, phases=('match', 'refine'), interval=None,
                 dataloader=None, metric_key='pseudo/mIoU'):
        if interval is not None and (not isinstance(interval, int)
                                     or interval < 1):
            raise ValueError('BestCAMSelectionHook: interval must be a '
                             f'positive int or None, got {interval!r}.')
        self.phases = tuple(phases)
        self.interval = interval
        self.dataloader_cfg = dataloader
        self.metric_key = metric_key
        self.record = {}  # phase -> dict(best_score, best_iter, scores)
        self._best_state = None  # CAM network state of the current best
        self._loaded = None
        self._loader = None
        self._intervals = {}

    # ------------------------------------------------------------ set-up
    def before_train(self, runner):
        schedule = phase_schedule(runner.model, 'BestCAMSelectionHook')
        unknown = set(self.phases) - set(schedule.names)
        if unknown:
            raise ValueError(f'BestCAMSelectionHook(phases={self.phases}): '
                             f'no phase {sorted(unknown)} in model.phases '
                             f'{list(schedule.names)}.')
        for name in self.phases:
            self._intervals[name] = self.interval or self._epoch(runner,
                                                                 name)
        loaded, self._loaded = self._loaded, None
        if loaded is not None and runner.iter and loaded[0] == runner.iter:
            _, self.record, self._best_state = loaded
            phase = schedule.at(runner.iter)
            if self._best_state is None and phase.name in self.phases and \
                    self.record.get(phase.name, {}).get('best_iter') and \
                    runner.iter < phase.end:
                raise RuntimeError(
                    f'BestCAMSelectionHook: the checkpoint of iteration '
                    f'{runner.iter} records a best {phase.name} iteration '
                    'but not its weights (written before checkpoints kept '
                    'them); resume from a checkpoint before that phase.')

    @staticmethod
    def _epoch(runner, phase) -> int:
        """Iterations of one pass over the phase's training data, the last
        partial batch dropped as the authors' loaders do (and as the VOC
        and COCO phase lengths count epochs)."""
        loader_cfg = (getattr(runner.train_loop, 'phase_dataloader_cfgs',
                              None) or {}).get(phase, {})
        batch_size = loader_cfg.get('batch_size',
                                    runner.train_dataloader.batch_size)
        world_size = torch.distributed.get_world_size() if \
            torch.distributed.is_initialized() else 1
        return max(1, len(runner.train_dataloader.dataset) //
                   (batch_size * world_size))

    def _score_split(self, runner) -> float:
        """The metric of the model's CAMs on the selection split."""
        if self._loader is None:
            cfg = self.dataloader_cfg or runner.cfg.get('val_dataloader')
            if not isinstance(cfg, dict):
                raise ValueError('BestCAMSelectionHook needs a dataloader: '
                                 'pass dataloader=dict(...) or define '
                                 'val_dataloader in the config.')
            self._loader = runner.build_dataloader(
                in_order_loader_cfg(cfg), seed=runner.seed)
        evaluator = Evaluator(METRICS.build(pseudo_mask_metric(runner.cfg)))
        evaluator.dataset_meta = self._loader.dataset.metainfo
        model = runner.model
        model.eval()
        with torch.no_grad():
            for batch in self._loader:
                evaluator.process(model.val_step(batch), batch)
        model.train()
        metrics = evaluator.evaluate(len(self._loader.dataset))
        if self.metric_key not in metrics:
            raise KeyError(f'BestCAMSelectionHook: metric_key '
                           f'{self.metric_key!r} is not among the metrics '
                           f'{sorted(metrics)}.')
        return float(metrics[self.metric_key])

    # ------------------------------------------------------------ select
    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        phase = phase_schedule(runner.model,
                               'BestCAMSelectionHook').at(runner.iter)
        if phase.name not in self.phases:
            return
        done = runner.iter + 1
        at_end = done == phase.end
        if not at_end and (done - phase.start) % self._intervals[
                phase.name]:
            return
        model = unwrap_model(runner.model)
        score = self._score_split(runner)
        entry = self.record.setdefault(
            phase.name, dict(best_score=None, best_iter=None, scores={}))
        entry['scores'][str(done)] = score
        if entry['best_score'] is None or score > entry['best_score']:
            entry.update(best_score=score, best_iter=done)
            self._best_state = model.cam_network_state()
            entry['path'] = self._save_best(runner, phase.name)
        print_log(f'BestCAMSelectionHook: {phase.name} at iteration {done}: '
                  f'{self.metric_key} {score:.2f} (best '
                  f'{entry["best_score"]:.2f} at {entry["best_iter"]})',
                  logger='current')
        if at_end:
            if entry['best_iter'] != done:
                model.load_cam_network_state(self._best_state)
                print_log(f'BestCAMSelectionHook: {phase.name} ends with the '
                          f'weights of iteration {entry["best_iter"]}',
                          logger='current')
            self._best_state = None
        self._write_record(runner)

    def _save_best(self, runner, phase) -> str:
        path = osp.join(runner.work_dir, f'best_cam_{phase}.pth')
        if is_main_process():
            with atomic_write(path, 'wb') as file:
                torch.save(self._best_state, file)
        barrier()
        return path

    def _write_record(self, runner):
        if not is_main_process():
            return
        path = osp.join(runner.work_dir, 'cam_selection.json')
        with atomic_write(path) as file:
            json.dump(dict(metric_key=self.metric_key, phases=self.record),
                      file, indent=2)

    # ------------------------------------------------------------ resume
    def before_save_checkpoint(self, runner, checkpoint):
        checkpoint['cam_selection'] = copy.deepcopy(self.record)
        # inside a selected phase: the best CAM network so far (None
        # between them)
        checkpoint['cam_selection_best'] = self._best_state

    def after_load_checkpoint(self, runner, checkpoint):
        if 'cam_selection' in checkpoint:
            self._loaded = (checkpoint.get('meta', {}).get('iter'),
                            copy.deepcopy(checkpoint['cam_selection']),
                            checkpoint.get('cam_selection_best'))
