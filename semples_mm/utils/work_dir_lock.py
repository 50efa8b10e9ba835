"""One run per work dir: a lock file naming its holder."""
import errno
import json
import os
import os.path as osp
import socket
import sys
import time

from mmengine.logging import print_log

LOCK_NAME = '.semples.lock'


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno == errno.EPERM  # exists, another user's
    return True


class WorkDirLock:
    """``<work_dir>/.semples.lock`` held while a run writes the work dir.

    The lock file holds the holder's pid, host, start time and command. A
    second run in the same work dir stops at once with a message naming the
    holder; a lock left by a dead process on this host is taken over, with
    a log line. Only one process of a multi-process run should take it
    (rank 0).

    Args:
        work_dir (str): the folder (created if missing).
        what (str): the run, for the messages (e.g. 'tools/train.py').
    """

    def __init__(self, work_dir: str, what: str):
        self.path = osp.join(work_dir, LOCK_NAME)
        self.what = what
        self._held = False

    def _holder(self) -> dict:
        try:
            with open(self.path) as file:
                return json.load(file)
        except (OSError, ValueError):
            return {}

    def acquire(self) -> 'WorkDirLock':
        os.makedirs(osp.dirname(self.path), exist_ok=True)
        me = dict(pid=os.getpid(), host=socket.gethostname(),
                  started=time.strftime('%Y-%m-%d %H:%M:%S'),
                  command=' '.join(sys.argv), what=self.what)
        for _ in range(2):
            try:
                handle = os.open(self.path,
                                 os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = self._holder()
                if holder.get('host') == me['host'] and holder.get(
                        'pid') is not None and not _alive(holder['pid']):
                    print_log(f'{self.path}: taking over the lock of '
                              f"process {holder['pid']} ({holder.get('what')}"
                              f", started {holder.get('started')}), which "
                              'is no longer running', logger='current')
                    os.remove(self.path)
                    continue
                raise RuntimeError(
                    f'{osp.dirname(self.path)} is in use by another run: '
                    f"process {holder.get('pid')} on {holder.get('host')} "
                    f"({holder.get('what')}, started "
                    f"{holder.get('started')}: {holder.get('command')}). "
                    'Wait for it to finish, stop it, or use another work '
                    f'dir; if it is gone for good, delete {self.path}.')
            with os.fdopen(handle, 'w') as file:
                json.dump(me, file)
            self._held = True
            return self
        raise RuntimeError(f'could not take the lock {self.path}')

    def release(self) -> None:
        if self._held:
            self._held = False
            if self._holder().get('pid') == os.getpid():
                os.remove(self.path)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
