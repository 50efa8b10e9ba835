"""Frozen CLIP, learnable background prompts, and the small synthetic CLIP.

Importing this package registers ``FrozenCLIP`` and
``BackgroundPromptLearner`` into mmseg's MODELS, and this project's open_clip
model configs (``model_configs/*.json``, e.g. 'semples-synthetic-tiny') into
open_clip.
"""
from pathlib import Path

import open_clip

MODEL_CONFIG_DIR = Path(__file__).parent / 'model_configs'
if MODEL_CONFIG_DIR not in open_clip.factory._MODEL_CONFIG_PATHS:
    open_clip.add_model_config(MODEL_CONFIG_DIR)

from .clip_checkpoint import (  # noqa: E402
    ClipWeights, is_torchscript_archive, read_clip_file, resolve_pretrained)
from .clip_model_name import (ClipModelSource,  # noqa: E402
                              resolve_model_name)
from .frozen_clip import FrozenCLIP  # noqa: E402
from .prompt_learner import BackgroundPromptLearner  # noqa: E402
from .synthetic_clip import (SYNTHETIC_CLIP_MODEL_NAME,  # noqa: E402
                             synthetic_clip_path)

__all__ = [
    'FrozenCLIP', 'BackgroundPromptLearner', 'ClipWeights',
    'ClipModelSource', 'resolve_model_name',
    'is_torchscript_archive', 'read_clip_file', 'resolve_pretrained',
    'MODEL_CONFIG_DIR', 'SYNTHETIC_CLIP_MODEL_NAME', 'synthetic_clip_path'
]
