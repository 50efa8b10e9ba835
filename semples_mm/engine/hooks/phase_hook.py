"""Enters the SemPLeS phases, schedules their learning rates and validates
at phase ends."""
import math

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from ...utils.models import phase_schedule, unwrap_model


@HOOKS.register_module()
class SemPLeSPhaseHook(Hook):
    """Drives the model's :class:`PhaseSchedule` from the iteration count.

    Before each iteration the model enters the phase that owns it
    (``model.set_phase``). When a phase starts, the optimizer it steps gets a
    fresh state (AdamW moments), as each of the authors' stages starts a new
    optimizer. Within a phase the learning rate follows a cosine from
    ``initial_lr * phase.lr_mult`` to ``eta_min_ratio`` of that over the
    phase's iterations. The rates are computed from the iteration alone, so
    no ``param_scheduler`` is needed (leave it out) and a resume is exact.
    After each phase of ``validate_after`` the validation loop runs, so the
    log shows CAM mIoU phase by phase (the training loop validates the
    last phase).

    Args:
        validate_after (Sequence[str], optional): phases to validate after;
            default: every phase of the schedule but ``prompt`` (whose CAM
            network does not change).
        eta_min_ratio (float): final learning rate of each phase relative to
            its start. Defaults to 0.
        cosine (bool): False keeps the learning rate constant within a
            phase. Defaults to True.
    """
    # Before RuntimeInfoHook (VERY_HIGH), so the logged lr is the one used.
    priority = 'HIGHEST'

    def __init__(self, validate_after=None, eta_min_ratio=0.0, cosine=True):
        if not 0 <= eta_min_ratio <= 1:
            raise ValueError('SemPLeSPhaseHook: eta_min_ratio must lie in '
                             f'[0, 1], got {eta_min_ratio!r}.')
        self.validate_after = None if validate_after is None else tuple(
            validate_after)
        self.eta_min_ratio = eta_min_ratio
        self.cosine = cosine
        self._output_keys = set()  # every key the model has logged

    def before_train(self, runner):
        schedule = phase_schedule(runner.model, 'SemPLeSPhaseHook')
        if self.validate_after is None:
            self.validate_after = tuple(n for n in schedule.names
                                        if n != 'prompt')
        unknown = set(self.validate_after) - set(schedule.names)
        if unknown:
            raise ValueError(
                f'SemPLeSPhaseHook(validate_after={list(self.validate_after)}'
                f'): no phase {sorted(unknown)} in model.phases '
                f'{list(schedule.names)}.')
        classes = (runner.train_dataloader.dataset.metainfo or {}).get(
            'classes')
        model = unwrap_model(runner.model)
        if classes and len(model.class_names) != len(classes) - 1:
            raise ValueError(
                f'model.class_names has {len(model.class_names)} names '
                f'({list(model.class_names)}) but the training dataset has '
                f'{len(classes) - 1} foreground classes ({list(classes[1:])})'
                '; give the model one name per foreground class, in the '
                "dataset's order.")
        if runner.max_iters != schedule.total_iters:
            raise ValueError(
                f'train_cfg.max_iters={runner.max_iters} but model.phases add '
                f'up to {schedule.total_iters} iterations; set train_cfg.'
                f'max_iters={schedule.total_iters} (or change the phases).')
        wrappers = runner.optim_wrapper
        for wrapper in (wrappers.values() if hasattr(wrappers, 'values')
                        else [wrappers]):
            for group in wrapper.optimizer.param_groups:
                # Kept in the optimizer's state dict, so resumes see it.
                group.setdefault('initial_lr', group['lr'])

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        model = unwrap_model(runner.model)
        phase = model.schedule.at(runner.iter)
        optimizer = model.schedule.optim_wrapper(
            phase.name, runner.optim_wrapper).optimizer
        if model.set_phase(phase.name):
            print_log(f'SemPLeS: phase "{phase.name}" starts at iteration '
                      f'{runner.iter + 1}', logger='current')
            optimizer.state.clear()
        factor = phase.lr_mult
        if self.cosine:
            progress = (runner.iter - phase.start) / phase.iters
            factor *= self.eta_min_ratio + (1 - self.eta_min_ratio) * 0.5 * (
                1 + math.cos(math.pi * progress))
        for group in optimizer.param_groups:
            group['lr'] = group['initial_lr'] * factor

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self._forget_other_phases_outputs(runner, outputs or {})
        done = runner.iter + 1
        if done >= runner.max_iters or runner.val_loop is None:
            return
        phase = phase_schedule(runner.model, 'SemPLeSPhaseHook').at(
            runner.iter)
        if phase.name in self.validate_after and done == phase.end:
            print_log(f'SemPLeS: validating the end of phase "{phase.name}"',
                      logger='current')
            runner.val_loop.run()
            runner.model.train()

    def _forget_other_phases_outputs(self, runner, outputs):
        """Drop logged model outputs this iteration did not produce.

        The message hub keeps every 'train/<key>' it was ever given, so
        without this the log lines of ``refine`` would still print the last
        ``loss_cls`` of ``cam`` and ``loss_prompt`` of ``prompt``. Model
        outputs are the keys seen in ``outputs`` so far and any 'loss*' key
        (also those a resumed checkpoint brings back). Runs before
        RuntimeInfoHook logs ``outputs`` (priority HIGHEST).
        """
        self._output_keys.update(outputs)
        scalars = runner.message_hub.log_scalars
        for key in list(scalars):
            name = key[len('train/'):]
            if key.startswith('train/') and name not in outputs and (
                    name in self._output_keys or name.startswith('loss')):
                del scalars[key]
