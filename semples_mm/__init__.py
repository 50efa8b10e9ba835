"""SemPLeS as mmsegmentation components.

Importing this package registers every component into mmsegmentation's
registries (MODELS, DATASETS, TRANSFORMS, HOOKS, METRICS, ...), so configs
only need ``custom_imports = dict(imports=['semples_mm'])``.
"""
from ._onedl_config_scopes import map_onedl_config_scopes
from ._quiet_imports import quiet_third_party_imports
from .version import __version__

# before any config is read: `mmseg::` bases in configs/segformer etc.
map_onedl_config_scopes()

# mmcv-lite and onedl-mmsegmentation print two messages on import that are
# not the user's business (see _quiet_imports); only those are dropped.
with quiet_third_party_imports():
    from . import datasets, engine, evaluation, models, pseudo_labels  # noqa

__all__ = ['__version__']
