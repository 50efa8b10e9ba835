"""SemPLeS as mmsegmentation components.

Importing this package registers every component into mmsegmentation's
registries (MODELS, DATASETS, TRANSFORMS, HOOKS, METRICS, ...), so configs
only need ``custom_imports = dict(imports=['semples_mm'])``.
"""
from .version import __version__
from . import datasets, engine, evaluation, models, pseudo_labels  # noqa

__all__ = ['__version__']
