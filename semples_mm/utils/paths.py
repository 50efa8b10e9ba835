"""Paths inside the installed package, for configs."""
from pathlib import Path

PACKAGE_SCHEME = 'semples_mm://'
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def resolve_package_path(path):
    """``'semples_mm://assets/x'`` -> the file inside the installed package;
    any other path is returned unchanged.

    Configs use the scheme for files shipped with semples_mm (the small
    synthetic CLIP), so they work from any working directory.
    """
    if isinstance(path, str) and path.startswith(PACKAGE_SCHEME):
        return str(PACKAGE_ROOT / path[len(PACKAGE_SCHEME):])
    return path
