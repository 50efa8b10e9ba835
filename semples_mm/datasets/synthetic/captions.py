"""English captions of synthetic-world images."""
from typing import Optional, Sequence

from .renderer import SYNTHETIC_CLASSES, SYNTHETIC_CONTEXTS


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
