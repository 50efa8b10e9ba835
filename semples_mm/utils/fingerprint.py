"""Short digests that say whether two runs had the same inputs."""
import hashlib
import json
import os
import os.path as osp
from typing import Any, Dict, Iterable

import torch


def state_fingerprint(state: Dict[str, Any]) -> str:
    """sha256 (16 hex digits) of a state dict's names, shapes, dtypes and
    bytes: equal for the same weights, whatever file they came from."""
    digest = hashlib.sha256()
    for key in sorted(state):
        value = state[key]
        digest.update(key.encode())
        if torch.is_tensor(value):
            tensor = value.detach().cpu().contiguous()
            digest.update(f'{tuple(tensor.shape)}{tensor.dtype}'.encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy()
                          .tobytes() if tensor.numel() else b'')
        else:
            digest.update(repr(value).encode())
    return digest.hexdigest()[:16]


def json_fingerprint(value: Any) -> str:
    """sha256 (16 hex digits) of a JSON-able value (keys sorted)."""
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def files_fingerprint(paths: Iterable[str]) -> Dict[str, str]:
    """Per path, a digest (16 hex digits) of the names, sizes and
    modification times of the files under it (a folder, recursively) or of
    it (a file), or 'missing': cheap (one stat per file, no reading), and
    it changes when a file is added, removed, replaced or edited (an edit
    that keeps the size and the time to the nanosecond aside).

    Args:
        paths (Iterable[str]): files and folders.

    Returns:
        dict: ``{path: digest or 'missing'}``.
    """
    prints = {}
    for path in sorted(set(paths)):
        if not osp.exists(path):
            prints[path] = 'missing'
            continue
        files = [path] if osp.isfile(path) else sorted(
            osp.join(root, name) for root, _, names in os.walk(path)
            for name in names)
        digest = hashlib.sha256()
        for file in files:
            stat = os.stat(file)
            digest.update(f'{osp.relpath(file, path)}\0{stat.st_size}\0'
                          f'{stat.st_mtime_ns}\n'.encode())
        prints[path] = digest.hexdigest()[:16]
    return prints


def flatten(value: Any, prefix: str = '') -> Dict[str, str]:
    """A nested dict/list as ``{'a.b.0.c': repr(leaf)}``, to name what
    differs between two configs."""
    if isinstance(value, dict):
        items = {}
        for key in sorted(value, key=str):
            items.update(flatten(value[key], f'{prefix}{key}.'))
        return items or {prefix.rstrip('.'): '{}'}
    if isinstance(value, (list, tuple)):
        items = {}
        for index, item in enumerate(value):
            items.update(flatten(item, f'{prefix}{index}.'))
        return items or {prefix.rstrip('.'): '[]'}
    return {prefix.rstrip('.'): repr(value)}


def changed_keys(old: Dict[str, str], new: Dict[str, str], limit: int = 5
                 ) -> str:
    """'key: old -> new' for the first ``limit`` keys that differ."""
    keys = sorted(set(old) | set(new))
    diffs = [f'{k}: {old.get(k, "(unset)")} -> {new.get(k, "(unset)")}'
             for k in keys if old.get(k) != new.get(k)]
    more = f' and {len(diffs) - limit} more' if len(diffs) > limit else ''
    return '; '.join(diffs[:limit]) + more
