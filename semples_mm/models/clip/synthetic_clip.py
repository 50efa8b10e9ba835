"""Where the small CLIP pretrained on the synthetic world is shipped."""
from pathlib import Path

SYNTHETIC_CLIP_MODEL_NAME = 'semples-synthetic-tiny'
_ASSETS = Path(__file__).resolve().parents[2] / 'assets'
SYNTHETIC_CLIP_FILE = _ASSETS / 'synthetic_clip.safetensors'


def synthetic_clip_path() -> str:
    """Path of the shipped small CLIP (model 'semples-synthetic-tiny').

    Use as ``FrozenCLIP(model_name='semples-synthetic-tiny',
    pretrained=synthetic_clip_path())``. Its seed and steps are recorded in
    ``synthetic_clip.json`` beside it; rebuild it with
    ``tools/misc/pretrain_synthetic_clip.py``.
    """
    if not SYNTHETIC_CLIP_FILE.is_file():
        raise FileNotFoundError(
            f'The small synthetic CLIP {SYNTHETIC_CLIP_FILE} is missing; '
            'build it with `python tools/misc/pretrain_synthetic_clip.py '
            f'--out {SYNTHETIC_CLIP_FILE}`.')
    return str(SYNTHETIC_CLIP_FILE)
