"""Outputs set aside (kept under a new name, never deleted) so that a step
runs again from a state it can run from: a training step whose inputs
changed, or whose phase-end checkpoint a later iteration has passed but
that is missing or broken."""
import os.path as osp
import shutil
import time
from typing import Dict, Iterable

from mmengine.logging import print_log

from semples_mm.engine.hooks.phase_checkpoint_hook import phase_checkpoint_path
from semples_mm.models.segmentors.phase_schedule import PhaseSchedule
from semples_mm.utils.checkpoints import (checkpoint_iteration,
                                          checkpoint_problem,
                                          iteration_checkpoints,
                                          latest_loadable_checkpoint)


def move_aside(path: str, why: str) -> None:
    """Rename ``path`` (a file or folder, if it exists) to
    ``<path>.stale-<time>``, with a log line saying ``why``."""
    if osp.exists(path):
        stale = f"{path}.stale-{time.strftime('%Y%m%d-%H%M%S')}"
        shutil.move(path, stale)
        print_log(f'[experiment] {why}: moved {path} to {stale}',
                  logger='current')


def phase_end_problems(work_dir: str, phases: Iterable[str]
                       ) -> Dict[str, str]:
    """``{phase: why}`` for each of ``phases`` whose phase-end checkpoint
    (``cam_network_after_<phase>.pth``) is missing or does not load."""
    problems = {}
    for phase in phases:
        problem = checkpoint_problem(phase_checkpoint_path(work_dir, phase))
        if problem is not None:
            problems[phase] = problem
    return problems


def rewind_before_broken_phase_ends(work_dir: str, schedule: PhaseSchedule,
                                    phases: Iterable[str]) -> None:
    """Make a resume in ``work_dir`` write every phase-end checkpoint of
    ``phases`` again that is missing or broken although the run has passed
    that phase's end: the iteration checkpoints at or after the earliest
    such end are moved aside, so the resume starts before it (from scratch
    when none is left). Without it, the resume would continue past the end
    and the file would never be written again.

    Args:
        work_dir (str): the training's work dir.
        schedule (PhaseSchedule): the run's phases.
        phases (Iterable[str]): the phases whose ends are kept.
    """
    latest, _ = latest_loadable_checkpoint(work_dir)
    done = checkpoint_iteration(latest) if latest else 0  # where it resumes
    lost = {phase: why for phase, why in
            phase_end_problems(work_dir, phases).items()
            if schedule[phase].end <= done}
    if not lost:
        return
    first = min(lost, key=lambda phase: schedule[phase].end)
    end = schedule[first].end
    why = (f'{phase_checkpoint_path(work_dir, first)}: {lost[first]}; the '
           f'training goes back to before the end of {first!r} (iteration '
           f'{end}) to write it again')
    for path in iteration_checkpoints(work_dir):
        if checkpoint_iteration(path) >= end:
            move_aside(path, why)
