"""Save and restore the global random generators with each checkpoint."""
import logging
import random

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS


def random_state() -> dict:
    """The states of Python's, NumPy's and torch's global generators."""
    return dict(python=random.getstate(), numpy=np.random.get_state(),
                torch=torch.get_rng_state(),
                cuda=(torch.cuda.get_rng_state_all()
                      if torch.cuda.is_available() else None))


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Makes a resumed run draw the same random numbers as an uninterrupted
    one, in every process.

    mmengine restores weights, optimizers, schedulers and the sampler position
    on resume, but re-seeds Python's, NumPy's and torch's global generators,
    so augmentations (e.g. ``RandomFlip``) and dropout diverge from the run
    that was killed. This hook stores the generators' states of every
    process in every checkpoint (gathered to rank 0, which writes it) and
    restores each process's own on resume. It makes resumption exact when
    data are loaded in the main process (``num_workers=0``); with worker
    processes the sample order is still exact but worker-side augmentation
    draws are re-seeded.

    A loaded checkpoint is a resume when training then starts at the
    checkpoint's iteration (> 0); weights loaded with ``load_from`` to start
    a new run (iteration 0) leave the seeded generators alone. Python's and
    NumPy's generators (used by the data pipeline) are restored when
    training starts, before the first batch is read; torch's just before
    the first resumed iteration, after the dataloader iterator has been
    built (which draws a base seed from torch's generator that the
    uninterrupted run drew long before).
    """
    # After the iteration's exports (LOW, they build dataloaders that draw
    # from torch's generator), before CheckpointHook (VERY_LOW) saves.
    priority = 80

    def __init__(self):
        self._loaded = None
        self._pending_torch_state = None
        self._states = None  # every rank's state after the last iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        # every rank takes part: only rank 0 writes checkpoints, and
        # before_save_checkpoint runs there alone
        state = random_state()
        self._states = all_gather_object(state) if get_world_size() > 1 \
            else [state]

    def before_save_checkpoint(self, runner, checkpoint):
        checkpoint['random_state'] = self._states or [random_state()]

    def after_load_checkpoint(self, runner, checkpoint):
        states = checkpoint.get('random_state')
        if isinstance(states, dict):  # written by one process, before lists
            states = [states]
        iteration = checkpoint.get('meta', {}).get('iter')
        self._loaded = None if states is None else (iteration, states)

    def before_train(self, runner):
        loaded, self._loaded = self._loaded, None
        if loaded is None or not runner.iter or loaded[0] != runner.iter:
            return
        states = loaded[1]
        if len(states) != get_world_size():
            print_log(
                f'RandomStateHook: the checkpoint holds the random states of '
                f'{len(states)} process(es), this run has {get_world_size()};'
                ' the generators stay seeded, so the resumed run draws other '
                'augmentations than an uninterrupted one.', logger='current',
                level=logging.WARNING)
            return
        state = states[get_rank()]
        random.setstate(state['python'])
        np.random.set_state(state['numpy'])
        self._pending_torch_state = state

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        state, self._pending_torch_state = self._pending_torch_state, None
        if state is None:
            return
        torch.set_rng_state(state['torch'])
        if state['cuda'] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])
