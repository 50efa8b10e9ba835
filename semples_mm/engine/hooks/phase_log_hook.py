"""Keeps the training log to the losses of the phase that runs."""
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...utils.models import phase_schedule


def forget_train_scalars(message_hub, keys) -> None:
    """Remove ``train/<key>`` scalars from mmengine's ``MessageHub``.

    mmengine offers no call for it: ``log_scalars`` is the hub's own dict,
    edited here (the one place in the project that does), because the hub
    otherwise prints every value it was ever given.
    """
    scalars = message_hub.log_scalars
    for key in keys:
        scalars.pop(f'train/{key}', None)


@HOOKS.register_module()
class PhaseLogHook(Hook):
    """Keeps the log lines of a phased model (e.g. SemPLeS) to the values of
    the phase that runs.

    The message hub keeps every 'train/<key>' it was ever given and logs
    losses as means over a window, so without this the log lines of
    ``refine`` would still print the last ``loss_cls`` of ``cam`` and
    ``loss_prompt`` of ``prompt``, and a total ``loss`` averaged across
    phases. Before each iteration's outputs are stored, model outputs that
    this iteration did not produce are dropped, and at a phase's first
    iteration all of them (their windows restart). Model outputs are the
    keys seen in the outputs so far and any 'loss*' key (also those a
    resumed checkpoint brings back). Logging only: training is the same
    with or without it.
    """
    # before RuntimeInfoHook (VERY_HIGH) stores this iteration's outputs
    priority = 'HIGHEST'

    def __init__(self):
        self._output_keys = set()  # every key the model has logged

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        outputs = outputs or {}
        phase = phase_schedule(runner.model, 'PhaseLogHook').at(runner.iter)
        starts = runner.iter == phase.start
        self._output_keys.update(outputs)
        logged = [key[len('train/'):] for key in runner.message_hub.log_scalars
                  if key.startswith('train/')]
        forget_train_scalars(runner.message_hub, [
            name for name in logged
            if (starts or name not in outputs) and (
                name in self._output_keys or name.startswith('loss'))])
