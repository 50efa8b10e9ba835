"""Results of pseudo-mask exports collected in one JSON file."""
import json
import os.path as osp

from ..utils.atomic_file import atomic_write
from ..utils.read_back import read_json


def update_summary_file(path, label, info):
    """Set ``summary[label] = info`` in the JSON file ``path``, atomically.

    Other labels already in the file are kept, so several exports (e.g.
    'cam' and 'semples') add up in one file.

    Args:
        path (str): JSON file, created if missing.
        label (str): key of this export.
        info (dict): JSON-serialisable results.

    Returns:
        dict: the whole summary after the update.
    """
    summary = read_json(path, 'Move it away so that a fresh summary can be '
                        'written.') if osp.exists(path) else {}
    summary[label] = info
    with atomic_write(path) as file:
        json.dump(summary, file, indent=2, sort_keys=True)
    return summary
