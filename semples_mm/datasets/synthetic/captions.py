"""English captions of synthetic-world images, and image-caption pairs for
pre-training a small CLIP on the world."""
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .renderer import SYNTHETIC_CLASSES, SYNTHETIC_CONTEXTS, SyntheticRenderer


def _article(word: str) -> str:
    return 'an' if word[0] in 'aeiou' else 'a'


def caption_for(objects: Sequence[int], context: Optional[int]) -> str:
    """The English caption of an image, e.g. 'a photo of a boat on water.'.

    ``objects`` are class indices (may be empty); ``context`` an index or None.
    """
    names = [SYNTHETIC_CLASSES[int(i)] for i in objects]
    things = ' and '.join(f'{_article(n)} {n}' for n in names)
    if context is None:
        return f'a photo of {things}.'
    ctx = SYNTHETIC_CONTEXTS[int(context)]
    if not names:
        return f'a photo of {ctx}.'
    return f'a photo of {things} on {ctx}.'


def render_caption_pairs(rng: np.random.Generator,
                         num: int,
                         image_size: int = 64,
                         kinds: Sequence[str] = ('object', 'context',
                                                 'object_on_context'),
                         renderer: Optional[SyntheticRenderer] = None
                         ) -> Tuple[np.ndarray, List[str]]:
    """Images and captions for pre-training a small CLIP on this world.

    Each sample picks a kind uniformly from ``kinds``:
    ``'object'``: one object on the grey ground, 'a photo of a boat.';
    ``'context'``: a context band alone, 'a photo of water.';
    ``'object_on_context'``: an object on a random context (any context, so
    the CLIP learns objects and contexts separately),
    'a photo of a boat on sky.'.

    Returns:
        tuple: ``images`` uint8 (num, H, W, 3) RGB and ``captions`` list[str].
    """
    allowed = ('object', 'context', 'object_on_context')
    unknown = [k for k in kinds if k not in allowed]
    if unknown or not kinds:
        raise ValueError(f'kinds={list(kinds)}: use a non-empty subset of '
                         f'{allowed}')
    renderer = renderer or SyntheticRenderer(image_size)
    num_classes = len(SYNTHETIC_CLASSES)
    images, captions = [], []
    for _ in range(num):
        kind = kinds[int(rng.integers(0, len(kinds)))]
        objects = [] if kind == 'context' else [int(rng.integers(num_classes))]
        context = (None if kind == 'object' else int(
            rng.integers(len(SYNTHETIC_CONTEXTS))))
        image, _ = renderer.render(
            rng, objects, context, grey_background=(kind == 'object'))
        images.append(image)
        captions.append(caption_for(objects, context))
    return np.stack(images), captions
