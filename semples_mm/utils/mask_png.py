"""Class-id masks as VOC palette PNGs: the palette, atomic writing and
reading. One module for the datasets, the exporter, the synthetic world and
the dataset converters."""
import io
import os
import os.path as osp
import tempfile
from typing import List

import numpy as np
from mmseg.datasets import PascalVOCDataset
from PIL import Image

#: Prefix and suffix of the temporary files that :func:`save_mask_png`
#: renames into place; a killed writer may leave some behind.
TEMP_PREFIX = '.tmp-'
TEMP_SUFFIX = '.png.part'


def _bit_spread_colour(index: int) -> List[int]:
    """VOC colour map entry: the bits of ``index`` spread over the high bits
    of R, G and B (bit 0 -> R, 1 -> G, 2 -> B, then the next bit lower)."""
    red = green = blue = 0
    for bit in range(8):
        red |= ((index >> 0) & 1) << (7 - bit)
        green |= ((index >> 1) & 1) << (7 - bit)
        blue |= ((index >> 2) & 1) << (7 - bit)
        index >>= 3
    return [red, green, blue]


def voc_palette(num_colours: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map: mmseg's VOC palette for ids 0..20, the
    same bit-spreading rule for the others (id 255, ignore, is cream).

    Returns:
        np.ndarray: (num_colours, 3) uint8.
    """
    mmseg_palette = [list(c) for c in PascalVOCDataset.METAINFO['palette']]
    return np.array([
        mmseg_palette[i] if i < len(mmseg_palette) else _bit_spread_colour(i)
        for i in range(num_colours)], dtype=np.uint8).reshape(-1, 3)


_FLAT_PALETTE = voc_palette().reshape(-1).tolist()


def save_mask_png(mask: np.ndarray, path: str) -> None:
    """Write a class-id mask as a VOC palette PNG, atomically.

    The PNG is written to a temporary file in the target folder and renamed
    over ``path``, so an existing ``path`` is always a complete file, even
    after a kill.

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
    image = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8))
    image.putpalette(_FLAT_PALETTE)  # turns the 'L' image into 'P'
    handle, temp_path = tempfile.mkstemp(
        dir=osp.dirname(osp.abspath(path)),
        prefix=TEMP_PREFIX + osp.basename(path) + '.', suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(handle, 'wb') as file:
            image.save(file, format='PNG')
        os.replace(temp_path, path)
    except BaseException:
        if osp.exists(temp_path):
            os.remove(temp_path)
        raise


def read_mask(source, name: str = None) -> np.ndarray:
    """A class-id mask (H, W) uint8 from a path or the file's bytes (as an
    mmengine file backend gives them; ``name`` then names it in errors);
    palette PNGs give their indices."""
    name = name or source
    opened = io.BytesIO(source) if isinstance(source, bytes) else source
    with Image.open(opened) as image:
        if image.mode not in ('P', 'L'):
            raise ValueError(
                f'mask {name} has image mode {image.mode}; class-id masks '
                'must be single-channel (palette "P" or greyscale "L") PNGs '
                'whose values are class ids')
        return np.array(image)


def remove_stale_temp_files(folder: str) -> int:
    """Delete the temporary files a killed :func:`save_mask_png` left behind;
    returns how many."""
    removed = 0
    for name in os.listdir(folder):
        if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
            os.remove(osp.join(folder, name))
            removed += 1
    return removed
