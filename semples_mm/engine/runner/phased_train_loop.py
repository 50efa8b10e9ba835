"""An iteration-based training loop over a model's phases: its length,
per-phase dataloaders and validation at phase ends."""
import copy
import logging
from typing import Dict, Optional, Sequence

from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from mmseg.registry import LOOPS

from ...utils.models import phase_schedule, unwrap_model


def merge_dataloader_cfg(base: dict, override: dict) -> dict:
    """``override`` merged into a copy of ``base``, dicts key by key (lists
    such as pipelines are replaced whole), as mmengine merges configs."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_dataloader_cfg(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@LOOPS.register_module()
class PhasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` over the phases of the model's
    :class:`PhaseSchedule`: it runs as many iterations as ``model.phases``
    add up to, validates at the ends of phases, and lets a phase read
    batches from a dataloader of its own. What each iteration trains
    (phase, optimizer, learning rate) is the model's business
    (``SemPLeS.train_step``).

    The authors train each stage with its own batch size and augmentation
    (the prompt stage at batch 128 with crop and flip only), and a prompt
    phase whose crop features come from a bank needs no pixels at all; a
    phase listed in ``phase_dataloaders`` reads its own dataloader, every
    other phase the ``train_dataloader``. Each phase dataloader config is
    merged into the ``train_dataloader`` config (dicts key by key, lists
    replaced), so it names only what differs. Dataloaders are built when
    their phase first needs them. A resumed run advances every dataloader
    by the batches it gave before the checkpoint (cheaply, at the sampler,
    for ``InfiniteSampler``), so the data order is that of an uninterrupted
    run.

    Args:
        runner (Runner): the runner.
        dataloader (DataLoader | dict): the training dataloader.
        max_iters (int, optional): total iterations; default (and the only
            value accepted) the sum of ``model.phases``.
        phase_dataloaders (dict, optional): phase name -> dataloader config
            overrides, e.g. ``dict(prompt=dict(batch_size=128))``.
        validate_after (Sequence[str], optional): phases at whose end the
            validation loop runs (the end of the last one is validated by
            ``val_interval``); default every phase but ``prompt`` (whose
            CAM network does not change).
        val_interval (int, optional): iterations between validations;
            default only at the end of training.
        **kwargs: ``val_begin`` ... of the base loop.
    """

    def __init__(self, runner, dataloader, max_iters: Optional[int] = None,
                 phase_dataloaders: Optional[Dict[str, dict]] = None,
                 validate_after: Optional[Sequence[str]] = None,
                 val_interval: Optional[int] = None, **kwargs):
        schedule = phase_schedule(runner.model, 'PhasedTrainLoop')
        if max_iters is not None and max_iters != schedule.total_iters:
            raise ValueError(
                f'train_cfg.max_iters={max_iters} but model.phases add up to '
                f'{schedule.total_iters} iterations; leave max_iters out '
                '(PhasedTrainLoop takes it from model.phases).')
        if validate_after is None:
            validate_after = [n for n in schedule.names if n != 'prompt']
        unknown = set(validate_after) - set(schedule.names)
        if unknown:
            raise ValueError(
                f'train_cfg.validate_after names {sorted(unknown)}, not '
                f'phases of model.phases {list(schedule.names)}.')
        self.validate_after = tuple(validate_after)
        train_cfg = copy.deepcopy(dataloader) if isinstance(
            dataloader, dict) else None
        super().__init__(runner, dataloader, schedule.total_iters,
                         val_interval=val_interval or schedule.total_iters,
                         **kwargs)
        self._check_class_names(unwrap_model(runner.model))
        self.phase_dataloader_cfgs = dict(phase_dataloaders or {})
        if self.phase_dataloader_cfgs and train_cfg is None:
            raise TypeError('PhasedTrainLoop: phase_dataloaders are merged '
                            'into the train_dataloader config, so '
                            'train_dataloader must be a config dict.')
        self._train_loader_cfg = train_cfg
        self._iterators = {None: self.dataloader_iterator}

    def _check_class_names(self, model) -> None:
        """The model's class list against the training dataset's (a
        shorter list would train a head that misreads the labels)."""
        names = getattr(model, 'class_names', None)
        classes = (getattr(self.dataloader.dataset, 'metainfo', None)
                   or {}).get('classes')
        if names is not None and classes and len(names) != len(classes) - 1:
            raise ValueError(
                f'model.class_names has {len(names)} names ({list(names)}) '
                f'but the training dataset has {len(classes) - 1} foreground '
                f'classes ({list(classes[1:])}); give the model one name per '
                "foreground class, in the dataset's order.")

    def _phase_end_to_validate(self, schedule) -> bool:
        """Whether the iterations done end a phase of ``validate_after``
        (before the last iteration, which ``val_interval`` covers)."""
        phase = schedule.at(self._iter - 1)
        if self._iter != phase.end or self._iter == self._max_iters or \
                phase.name not in self.validate_after:
            return False
        print_log(f'PhasedTrainLoop: validating the end of phase '
                  f'"{phase.name}"', logger='current')
        return True

    def _loader_key(self, iteration: int) -> Optional[str]:
        """The phase whose own dataloader serves ``iteration`` (None: the
        train dataloader)."""
        name = phase_schedule(self.runner.model, 'PhasedTrainLoop').at(
            iteration).name
        return name if name in self.phase_dataloader_cfgs else None

    def _iterator(self, key: Optional[str]):
        if key not in self._iterators:
            cfg = merge_dataloader_cfg(self._train_loader_cfg,
                                       self.phase_dataloader_cfgs[key])
            randomness = self.runner.cfg.get('randomness') or {}
            loader = self.runner.build_dataloader(
                cfg, seed=self.runner.seed,
                diff_rank_seed=randomness.get('diff_rank_seed', False))
            # the endless iterator IterBasedTrainLoop made for the train
            # dataloader, of the same class (mmengine keeps it private): a
            # resume skips batches in every phase's loader the same way
            self._iterators[key] = type(self.dataloader_iterator)(loader)
        return self._iterators[key]

    def run(self):
        """Launch training (``IterBasedTrainLoop.run`` with a dataloader
        per phase)."""
        schedule = phase_schedule(self.runner.model, 'PhasedTrainLoop')
        unknown = set(self.phase_dataloader_cfgs) - set(schedule.names)
        if unknown:
            raise ValueError(
                f'train_cfg.phase_dataloaders names {sorted(unknown)}, not '
                f'phases of model.phases {list(schedule.names)}.')
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        if self._iter > 0 and self.fast_forward_on_resume:
            print_log('Skip advancing the dataloaders to save time; the '
                      'resumed run reads other batches than an uninterrupted '
                      'one would.', logger='current', level=logging.WARNING)
        elif self._iter > 0:
            consumed = {}
            for iteration in range(self._iter):
                key = self._loader_key(iteration)
                consumed[key] = consumed.get(key, 0) + 1
            print_log(f'Advance the dataloaders to skip the {self._iter} '
                      'batches already trained', logger='current',
                      level=logging.INFO)
            for key, count in consumed.items():
                self._iterator(key).skip_iter(count)
        # A checkpoint saved at a phase end precedes that phase's
        # validation, which a kill may have cut short: a run resumed there
        # validates it (again, at worst).
        if self._iter > 0 and self.runner.val_loop is not None and \
                self._phase_end_to_validate(schedule):
            self.runner.val_loop.run()
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            data_batch = next(self._iterator(self._loader_key(self._iter)))
            self.run_iter(data_batch)
            self._decide_current_val_interval()
            if self.runner.val_loop is not None and (
                    self._phase_end_to_validate(schedule) or (
                        self._iter >= self.val_begin and (
                            self._iter % self.val_interval == 0
                            or self._iter == self._max_iters))):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model
