"""Switches the SemPLeS phases, schedules their learning rates and validates
at each phase end."""
import math

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


@HOOKS.register_module()
class SemPLeSPhaseHook(Hook):
    """Drives ``model.phases`` from the iteration count.

    Before each iteration the model enters the phase that owns it
    (``model.set_phase``, which snapshots / restores the CAM network). When
    a phase starts, the optimizer it steps is reset to a fresh state (AdamW
    moments), as each of the authors' stages starts a new optimizer. Within
    a phase the learning rate follows a cosine from ``initial_lr * lr_mult``
    to ``initial_lr * lr_mult * eta_min_ratio`` over the phase's iterations.
    The schedule is computed from the iteration count alone, so it needs no
    ``param_scheduler`` (leave it out) and resumes exactly; phase lengths are
    set in one place, ``model.phases``. After a phase listed in
    ``validate_after`` ends, the validation loop runs so the log shows CAM
    mIoU phase by phase (the training loop validates the last phase).

    Args:
        validate_after (Sequence[str]): phases to validate after.
        lr_mult (dict, optional): phase name -> factor on the optimizer's
            initial learning rates in that phase, e.g. to fine-tune the CAM
            network in ``match``/``refine`` more gently than it was trained
            in ``cam``. Defaults to 1 for every phase.
        eta_min_ratio (float): final learning rate of each phase relative to
            its start. Defaults to 0.
        cosine (bool): False keeps the learning rate constant within a
            phase. Defaults to True.
    """
    # Before RuntimeInfoHook (VERY_HIGH), so the logged lr is the one used.
    priority = 'HIGHEST'

    def __init__(self, validate_after=('cam', 'match', 'refine'),
                 lr_mult=None, eta_min_ratio=0.0, cosine=True):
        self.validate_after = tuple(validate_after)
        self.lr_mult = dict(lr_mult or {})
        self.eta_min_ratio = eta_min_ratio
        self.cosine = cosine
        self._output_keys = set()  # every key the model has logged

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_train(self, runner):
        model = self._model(runner)
        if runner.max_iters != model.total_iters:
            raise ValueError(
                f'train_cfg.max_iters={runner.max_iters} but model.phases add '
                f'up to {model.total_iters} iterations; set train_cfg.max_iters'
                f'={model.total_iters} (or change the phases).')
        wrappers = runner.optim_wrapper
        for wrapper in (wrappers.values() if hasattr(wrappers, 'values')
                        else [wrappers]):
            for group in wrapper.optimizer.param_groups:
                # Kept in the optimizer's state dict, so resumes see it.
                group.setdefault('initial_lr', group['lr'])

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        model = self._model(runner)
        phase = model.phase_at(runner.iter)
        entered = model.set_phase(phase)
        optimizer = model.active_optim_wrapper(runner.optim_wrapper).optimizer
        if entered:
            print_log(f'SemPLeS: phase "{phase}" starts at iteration '
                      f'{runner.iter + 1}', logger='current')
            optimizer.state.clear()
        start = model.phase_start_iter(phase)
        length = model.phase_end_iter(phase) - start
        factor = self.lr_mult.get(phase, 1.0)
        if self.cosine:
            progress = (runner.iter - start) / length
            factor *= self.eta_min_ratio + (1 - self.eta_min_ratio) * 0.5 * (
                1 + math.cos(math.pi * progress))
        for group in optimizer.param_groups:
            group['lr'] = group['initial_lr'] * factor

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self._forget_other_phases_outputs(runner, outputs or {})
        model = self._model(runner)
        done = runner.iter + 1
        if done >= runner.max_iters or runner.val_loop is None:
            return
        phase = model.phase_at(runner.iter)
        if phase in self.validate_after and done == model.phase_end_iter(
                phase):
            print_log(f'SemPLeS: validating the end of phase "{phase}"',
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
