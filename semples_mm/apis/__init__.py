"""Python entry points behind the tools: train a config, write pseudo masks
of a split, test a checkpoint. ``tools/*.py`` parse a command line and call
these; the experiment runner calls them directly."""
from .pseudo_labels import make_pseudo_labels
from .test import test_checkpoint
from .train import train

__all__ = ['make_pseudo_labels', 'test_checkpoint', 'train']
