"""VOC colour palette and atomic writing of palette PNG masks."""
import os
import os.path as osp
import tempfile

import numpy as np
from PIL import Image

#: Prefix and suffix of the temporary files that :func:`save_mask_png`
#: renames into place; a killed export may leave some behind.
TEMP_PREFIX = '.tmp-'
TEMP_SUFFIX = '.png.part'


def voc_palette(num_colors=256):
    """The PASCAL VOC colour map.

    Colour ``i`` spreads the bits of ``i`` over the high bits of R, G and B,
    so id 0 is black, 1 dark red, 2 dark green, ..., 255 (ignore) cream.

    Returns:
        np.ndarray: (num_colors, 3) uint8.
    """
    palette = np.zeros((num_colors, 3), dtype=np.uint8)
    for index in range(num_colors):
        value, red, green, blue = index, 0, 0, 0
        for bit in range(8):
            red |= ((value >> 0) & 1) << (7 - bit)
            green |= ((value >> 1) & 1) << (7 - bit)
            blue |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        palette[index] = (red, green, blue)
    return palette


_VOC_PALETTE_FLAT = voc_palette().reshape(-1).tolist()


def save_mask_png(mask, path):
    """Write a class-id mask as a VOC palette PNG, atomically.

    The PNG is written to a temporary file in the target folder and renamed
    over ``path`` with ``os.replace``, so an existing ``path`` is always a
    complete file, even after a kill.

    Args:
        mask (np.ndarray): (H, W) integer class ids in [0, 255].
        path (str): target file.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'a mask must be (H, W), got shape {mask.shape} '
                         f'for {path}')
    if mask.size and (mask.min() < 0 or mask.max() > 255):
        raise ValueError(f'class ids must lie in [0, 255] for a palette PNG, '
                         f'got [{mask.min()}, {mask.max()}] for {path}')
    image = Image.fromarray(mask.astype(np.uint8))
    image.putpalette(_VOC_PALETTE_FLAT)  # turns the 'L' image into 'P'
    folder = osp.dirname(osp.abspath(path))
    handle, temp_path = tempfile.mkstemp(
        dir=folder, prefix=TEMP_PREFIX + osp.basename(path) + '.',
        suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(handle, 'wb') as file:
            image.save(file, format='PNG')
        os.replace(temp_path, path)
    except BaseException:
        if osp.exists(temp_path):
            os.remove(temp_path)
        raise


def remove_stale_temp_files(folder):
    """Delete the temporary files a killed :func:`save_mask_png` left behind.

    Returns:
        int: number of files removed.
    """
    removed = 0
    for name in os.listdir(folder):
        if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
            os.remove(osp.join(folder, name))
            removed += 1
    return removed
