"""Files written whole or not at all, with the permissions the user's umask
gives, and the temporary files a killed writer leaves behind."""
import os
import os.path as osp
import tempfile
from contextlib import contextmanager
from typing import List

#: A temporary file is ``<folder>/.tmp-<target name>.<random>.part``: a
#: killed writer leaves it, the next run that holds the folder removes it.
TEMP_PREFIX = '.tmp-'
TEMP_SUFFIX = '.part'


def current_umask() -> int:
    """The process's umask (read from /proc where it can be, since setting
    and restoring it is not thread-safe)."""
    try:
        with open('/proc/self/status') as file:
            for line in file:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path: str, mode: str = 'w', fsync: bool = False):
    """Write ``path`` through a temporary file of its folder, renamed over
    ``path`` once complete: readers and a later run see the old file or
    the new one, never a part. The file gets the mode an ordinary
    ``open(path, 'w')`` would (0666 less the umask), not mkstemp's 0600,
    so that the other members of a group can read a shared work dir.

    Args:
        path (str): the target file; its folder is created if missing.
        mode (str): 'w' (text) or 'wb' (bytes).
        fsync (bool): flush the bytes to disk before the rename (large
            files that a crash of the machine must not leave empty).

    Yields:
        file: the open temporary file.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temp = tempfile.mkstemp(
        dir=folder, prefix=f'{TEMP_PREFIX}{osp.basename(path)}.',
        suffix=TEMP_SUFFIX)
    try:
        os.fchmod(handle, 0o666 & ~current_umask())
        with os.fdopen(handle, mode) as file:
            yield file
            if fsync:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        if osp.exists(temp):
            os.remove(temp)
        raise


def stale_temp_files(folder: str, recursive: bool = False) -> List[str]:
    """The temporary files of :func:`atomic_write` in ``folder`` (and its
    sub-folders with ``recursive``)."""
    if not osp.isdir(folder):
        return []
    walk = os.walk(folder)
    if not recursive:
        walk = [next(walk)]
    return [osp.join(root, name) for root, _, names in walk for name in names
            if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)]


def remove_stale_temp_files(folder: str, recursive: bool = False) -> int:
    """Delete what :func:`stale_temp_files` finds (call it only while no
    other process writes the folder, e.g. holding its work-dir lock);
    returns how many."""
    paths = stale_temp_files(folder, recursive)
    for path in paths:
        os.remove(path)
    return len(paths)
