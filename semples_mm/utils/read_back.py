"""Reading back the files a run wrote (summaries, export manifests,
checkpoints): one reader that, for a file a kill, a full disk or a hand
has damaged, names the file and says what to do, instead of a parser's
traceback."""
import json
import os.path as osp
from typing import Any, Callable


class DamagedFile(ValueError):
    """A file that exists (or should) but cannot be read back.

    Attributes:
        path (str): the file.
        why (str): what is wrong with it.
    """

    def __init__(self, path: str, why: str, remedy: str):
        self.path = path
        self.why = why
        super().__init__(f'{path} cannot be read back: {why}. {remedy}')


def read_back(path: str, load: Callable[[str], Any], remedy: str) -> Any:
    """``load(path)``, or :class:`DamagedFile` naming ``path``, what is
    wrong and ``remedy`` (what the user should do).

    Args:
        path (str): the file.
        load (callable): ``load(path)`` parses it (e.g. :func:`load_json`).
        remedy (str): a sentence saying what to do about a damaged file.
    """
    if not osp.isfile(path):
        raise DamagedFile(path, 'it does not exist', remedy)
    if osp.getsize(path) == 0:
        raise DamagedFile(path, 'it is empty (0 bytes)', remedy)
    try:
        return load(path)
    except Exception as error:  # noqa: BLE001 (any failure: damaged)
        raise DamagedFile(path, f'it does not load ({type(error).__name__}: '
                          f'{error})', remedy) from error


def load_json(path: str) -> Any:
    with open(path) as file:
        return json.load(file)


def read_json(path: str, remedy: str) -> Any:
    """The JSON file ``path`` (see :func:`read_back`)."""
    return read_back(path, load_json, remedy)
