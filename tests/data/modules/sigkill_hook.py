"""A hook for runs the tests start in subprocesses: a real kill, as a
scheduler's or the OOM killer's, after a given iteration."""
import os
import signal

from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class SigkillAfterIterHook(Hook):
    """SIGKILLs the process of rank ``rank`` once iteration ``stop_iter``
    is done and saved (LOWEST: after the CheckpointHook)."""
    priority = 'LOWEST'

    def __init__(self, stop_iter: int, rank: int = 0):
        self.stop_iter = stop_iter
        self.rank = rank

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.stop_iter and runner.rank == self.rank:
            os.kill(os.getpid(), signal.SIGKILL)
