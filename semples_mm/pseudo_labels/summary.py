"""Results of pseudo-mask exports collected in one JSON file."""
import json
import os
import os.path as osp
import tempfile


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
    summary = {}
    if osp.exists(path):
        with open(path) as file:
            try:
                summary = json.load(file)
            except json.JSONDecodeError as error:
                raise ValueError(
                    f'{path} is not valid JSON ({error}); move it away so '
                    'that a fresh summary can be written') from error
    summary[label] = info
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temp_path = tempfile.mkstemp(dir=folder, suffix='.json.part')
    with os.fdopen(handle, 'w') as file:
        json.dump(summary, file, indent=2, sort_keys=True)
    os.replace(temp_path, path)
    return summary
