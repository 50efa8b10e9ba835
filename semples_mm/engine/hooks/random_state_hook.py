"""Save and restore the global random generators with each checkpoint."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Makes a resumed run draw the same random numbers as an uninterrupted one.

    mmengine restores weights, optimizers, schedulers and the sampler position
    on resume, but re-seeds Python's, NumPy's and torch's global generators,
    so augmentations (e.g. ``RandomFlip``) and dropout diverge from the run
    that was killed. This hook stores the generators' states in every
    checkpoint and restores them on resume. It makes resumption exact when
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
    priority = 'VERY_LOW'

    def __init__(self):
        self._loaded = None
        self._pending_torch_state = None

    def before_save_checkpoint(self, runner, checkpoint):
        checkpoint['random_state'] = dict(
            python=random.getstate(),
            numpy=np.random.get_state(),
            torch=torch.get_rng_state(),
            cuda=(torch.cuda.get_rng_state_all()
                  if torch.cuda.is_available() else None))

    def after_load_checkpoint(self, runner, checkpoint):
        state = checkpoint.get('random_state')
        iteration = checkpoint.get('meta', {}).get('iter')
        self._loaded = None if state is None else (iteration, state)

    def before_train(self, runner):
        loaded, self._loaded = self._loaded, None
        if loaded is None or not runner.iter or loaded[0] != runner.iter:
            return
        state = loaded[1]
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
