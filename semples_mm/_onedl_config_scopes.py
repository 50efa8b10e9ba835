"""Let ``_base_ = ['mmseg::...']`` find the configs of the OneDL packages.

mmengine resolves ``mmseg::segformer/x.py`` by looking the pip distribution
up in ``mmengine.config.utils.MODULE2PACKAGE`` ('mmseg' ->
'mmsegmentation') and reading that distribution's ``.mim/configs``. The
OneDL distributions this project pins ship the same import packages under
other distribution names ('onedl-mmsegmentation', 'onedl-mmdetection'),
and onedl-mmengine 0.10.12 still maps to the upstream names, so every
``mmseg::`` base fails with ``ModuleNotFoundError: mmsegmentation is not
installed``. Where only the OneDL distribution is installed, point the
scope at it; an installed upstream distribution is left as mmengine maps it.
"""
from importlib.metadata import PackageNotFoundError, distribution

# config scope -> the OneDL distribution that installs its import package
ONEDL_DISTRIBUTIONS = {
    'mmseg': 'onedl-mmsegmentation',
    'mmdet': 'onedl-mmdetection',
}


def _installed(name: str) -> bool:
    try:
        distribution(name)
    except PackageNotFoundError:
        return False
    return True


def map_onedl_config_scopes() -> dict:
    """Point each config scope whose upstream distribution is missing at
    its installed OneDL distribution. Returns the scopes it remapped."""
    from mmengine.config.utils import MODULE2PACKAGE
    remapped = {}
    for scope, onedl_name in ONEDL_DISTRIBUTIONS.items():
        upstream = MODULE2PACKAGE.get(scope)
        if upstream is None or _installed(upstream):
            continue
        if _installed(onedl_name):
            MODULE2PACKAGE[scope] = onedl_name
            remapped[scope] = onedl_name
    return remapped
