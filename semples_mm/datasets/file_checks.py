"""Cheap checks of a dataset's files, done when the dataset is built."""
import os.path as osp
from typing import List, Optional

import numpy as np

# Files whose last bytes must hold the format's end marker; a missing marker
# means the file was cut short (interrupted download or copy).
_END_MARKERS = {'.jpg': b'\xff\xd9', '.jpeg': b'\xff\xd9', '.png': b'IEND'}
_TAIL_BYTES = 64


def read_image_list(text: str) -> List[str]:
    """Image ids from the text of a list file, one per line.

    A line may be an id (``2007_000032``) or, as in some ``trainaug`` lists,
    paths (``/JPEGImages/2007_000032.jpg /SegmentationClassAug/...``): the
    stem of the first token is the id. Blank lines are skipped.
    """
    ids = []
    for line in text.splitlines():
        token = line.strip().split()
        if not token:
            continue
        first = token[0]
        if '/' in first or '.' in osp.basename(first):
            first = osp.splitext(osp.basename(first))[0]
        ids.append(first)
    return ids


def check_image_file(path: str) -> Optional[str]:
    """Why the image file cannot be used, or None when it looks whole.

    Cheap: opens the file and reads its last bytes. Empty files, unreadable
    files and JPEG/PNG files without their end marker (truncated) are caught;
    damage inside an otherwise whole file shows only when it is decoded.
    """
    try:
        with open(path, 'rb') as f:
            f.seek(0, 2)
            size = f.tell()
            if size == 0:
                return 'the file is empty'
            f.seek(max(0, size - _TAIL_BYTES))
            tail = f.read()
    except OSError as e:
        return f'cannot read it ({e.strerror})'
    marker = _END_MARKERS.get(osp.splitext(path)[1].lower())
    if marker is not None and marker not in tail:
        return 'it is truncated (no end-of-image marker)'
    return None


def check_mask_values(values: np.ndarray, num_classes: int, path: str,
                      ignore_index: int = 255) -> None:
    """Raise if a mask holds ids other than 0..num_classes-1 and the ignore
    index. ``values``: the unique values of the mask."""
    bad = [int(v) for v in values
           if v >= num_classes and v != ignore_index]
    if bad:
        raise ValueError(
            f'mask {path} holds value(s) {bad} outside 0..{num_classes - 1} '
            f'and {ignore_index} (ignore); the dataset has {num_classes} '
            'classes including background. Check that the masks are '
            'class-id PNGs for this dataset (not colour images) and that the '
            'class list in the config matches them.')
