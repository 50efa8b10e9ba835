"""Keeps the CAM network of each phase end, for exports after training."""
import io
import os.path as osp

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...utils.checkpoints import AtomicLocalBackend
from ...utils.models import phase_schedule, unwrap_model


def phase_checkpoint_path(work_dir: str, phase: str) -> str:
    """``<work_dir>/cam_network_after_<phase>.pth``."""
    return osp.join(work_dir, f'cam_network_after_{phase}.pth')


@HOOKS.register_module()
class PhaseCheckpointHook(Hook):
    """At the end of each phase of ``phases``, saves the CAM network
    (``dict(state_dict=model.cam_network_state(), meta=...)``, atomically)
    to :func:`phase_checkpoint_path`, which the regular checkpoint rotation
    never deletes: pseudo masks of a phase end can then be exported, and
    re-exported after a kill, from exactly the weights that phase ended
    with (after a model selection's restore), never from a later model.

    Args:
        phases (Sequence[str], optional): default every phase.
    """
    # after BestCAMSelectionHook (HIGH) restores a phase's best weights
    priority = 'NORMAL'

    def __init__(self, phases=None):
        self.phases = None if phases is None else tuple(phases)

    def before_train(self, runner):
        names = phase_schedule(runner.model, 'PhaseCheckpointHook').names
        if self.phases is None:
            self.phases = names
        unknown = set(self.phases) - set(names)
        if unknown:
            raise ValueError(f'PhaseCheckpointHook(phases={self.phases}): '
                             f'no phase {sorted(unknown)} in model.phases '
                             f'{list(names)}.')

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        phase = phase_schedule(runner.model,
                               'PhaseCheckpointHook').at(runner.iter)
        if phase.name not in self.phases or runner.iter + 1 != phase.end:
            return
        if is_main_process():
            buffer = io.BytesIO()
            torch.save(dict(
                state_dict=unwrap_model(runner.model).cam_network_state(),
                meta=dict(iter=phase.end, phase=phase.name,
                          experiment=runner.experiment_name)), buffer)
            AtomicLocalBackend().put(
                buffer.getvalue(),
                phase_checkpoint_path(runner.work_dir, phase.name))
