"""The project's ``configs/`` folder wherever the project is: installed
(``pip install .`` copies it into this package, as mmseg installs its own
configs with the package) or a checkout (an editable install or the source
tree, where ``configs/`` sits beside this package)."""
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CONFIG_ROOTS = (PACKAGE_DIR / 'configs', PACKAGE_DIR.parent / 'configs')


def shipped_config(relative: str) -> str:
    """The path of ``configs/<relative>``, e.g.
    ``shipped_config('deeplabv2/deeplabv2_tiny_synthetic_pseudo.py')``."""
    for root in CONFIG_ROOTS:
        path = root / relative
        if path.is_file():
            return str(path)
    raise FileNotFoundError(
        f'configs/{relative} is neither installed with semples_experiments '
        f'({CONFIG_ROOTS[0]}) nor in a checkout beside it '
        f'({CONFIG_ROOTS[1]}). Reinstall the project (pip install .), or '
        'pass the config explicitly.')
