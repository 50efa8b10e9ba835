"""Class-id masks as VOC palette PNGs: the palette, atomic writing and
reading. One module for the datasets, the exporter, the synthetic world and
the dataset converters."""
import io
from typing import List

import numpy as np
from mmseg.datasets import PascalVOCDataset
from PIL import Image

# the temporary files :func:`save_mask_png` renames into place (a killed
# writer may leave some behind), and their removal
from .atomic_file import (TEMP_PREFIX, TEMP_SUFFIX,  # noqa: F401
                          atomic_write, remove_stale_temp_files)


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
    with atomic_write(path, 'wb') as file:
        image.save(file, format='PNG')


def read_mask(source, name: str = None) -> np.ndarray:
    """A class-id mask (H, W) uint8 from a path or the file's bytes (as an
    mmengine file backend gives them; ``name`` then names it in errors);
    palette PNGs give their indices. A file that does not decode (empty,
    truncated, not an image) raises a ValueError naming it."""
    name = name or source
    opened = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with Image.open(opened) as image:
            mode = image.mode
            mask = np.array(image) if mode in ('P', 'L') else None
    except FileNotFoundError:
        raise
    except (OSError, SyntaxError, ValueError) as error:
        # PIL: UnidentifiedImageError (an OSError), 'Truncated File Read',
        # 'image file is truncated', SyntaxError for a broken chunk
        raise ValueError(
            f'mask {name} cannot be decoded ({type(error).__name__}: '
            f'{error}): the file is damaged or truncated (e.g. by an '
            'interrupted copy or download). Restore it from the dataset\'s '
            'archive, or remove its image from the list.') from error
    if mask is None:
        raise ValueError(
            f'mask {name} has image mode {mode}; class-id masks must be '
            'single-channel (palette "P" or greyscale "L") PNGs whose '
            'values are class ids')
    return mask

