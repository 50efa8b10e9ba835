"""Walking a config for the dicts of a kind (e.g. every dataset config,
wherever it sits: dataloaders, phase dataloaders, a feature bank, hooks)."""
from typing import Iterator, Sequence


def dicts_with_keys(cfg, keys: Sequence[str]) -> Iterator[dict]:
    """Every dict anywhere in ``cfg`` (``cfg`` itself included) that has one
    of ``keys``, e.g. ``('data_prefix', 'ann_file')`` for dataset configs.

    Args:
        cfg (dict | list): a config or a part of one.
        keys (Sequence[str]): the keys that mark a wanted dict.
    """
    pending = [cfg]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if any(key in node for key in keys):
                yield node
            pending.extend(node.values())
        elif isinstance(node, (list, tuple)):
            pending.extend(node)
