"""One run per work dir: a lock file naming its holder."""
import errno
import json
import os
import os.path as osp
import socket
import sys
import time

from mmengine.logging import print_log

from .atomic_file import remove_stale_temp_files

LOCK_NAME = '.semples.lock'


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno == errno.EPERM  # exists, another user's
    return True


#: Seconds an empty lock file may be young: between creating it and
#: writing its holder, a live run leaves it empty for a moment.
EMPTY_LOCK_GRACE_S = 5.0


class WorkDirLock:
    """``<work_dir>/.semples.lock`` held while a run writes the work dir.

    The lock file holds the holder's pid, host, start time and command. A
    second run in the same work dir stops at once with a message naming the
    holder; a lock left by a dead process on this host is taken over, with
    a log line, and so is an empty or unreadable one older than
    :data:`EMPTY_LOCK_GRACE_S` (its writer was killed, or the disk was
    full, before it wrote its name). Once taken, the temporary files a
    killed writer left in the work dir (``atomic_write``'s) are removed.
    Only one process of a multi-process run should take it (rank 0).

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
                holder = json.load(file)
        except (OSError, ValueError):
            return {}
        return holder if isinstance(holder, dict) else {}

    def _stale(self, holder: dict, host: str):
        """Why the existing lock can be taken over (a log line; '' when it
        was released meanwhile), else None (a live holder)."""
        if not holder:
            try:
                age = time.time() - osp.getmtime(self.path)
            except OSError:  # released meanwhile: try again
                return ''
            if age < EMPTY_LOCK_GRACE_S:
                time.sleep(EMPTY_LOCK_GRACE_S - age)
                holder = self._holder()
                if holder:
                    return self._stale(holder, host)
            return ('taking over the empty or unreadable lock file (its '
                    'writer was killed, or the disk was full, before it '
                    'wrote its name)')
        if holder.get('host') == host and holder.get('pid') is not None \
                and not _alive(holder['pid']):
            return (f"taking over the lock of process {holder['pid']} "
                    f"({holder.get('what')}, started "
                    f"{holder.get('started')}), which is no longer running")
        return None

    def acquire(self) -> 'WorkDirLock':
        os.makedirs(osp.dirname(self.path), exist_ok=True)
        me = dict(pid=os.getpid(), host=socket.gethostname(),
                  started=time.strftime('%Y-%m-%d %H:%M:%S'),
                  command=' '.join(sys.argv), what=self.what)
        for _ in range(3):
            try:
                handle = os.open(self.path,
                                 os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = self._holder()
                stale = self._stale(holder, me['host'])
                if stale is not None:
                    if stale:
                        print_log(f'{self.path}: {stale}', logger='current')
                    if osp.exists(self.path):
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
            removed = remove_stale_temp_files(osp.dirname(self.path))
            if removed:
                print_log(f'{osp.dirname(self.path)}: removed {removed} '
                          'temporary file(s) that a killed run left',
                          logger='current')
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
