"""Frozen CLIP, learnable background prompts, and the small synthetic CLIP.

Importing this package registers ``FrozenCLIP`` and
``BackgroundPromptLearner`` into mmseg's MODELS, and this project's open_clip
model configs (``model_configs/*.json``, e.g. 'semples-synthetic-tiny') into
open_clip.
"""
from pathlib import Path

import open_clip

MODEL_CONFIG_DIR = Path(__file__).parent / 'model_configs'
open_clip.add_model_config(MODEL_CONFIG_DIR)

from .frozen_clip import FrozenCLIP  # noqa: E402
from .input_conversion import ClipInputConverter  # noqa: E402
from .loading import (ClipModelSource, ClipWeights,  # noqa: E402
                      read_clip_file, resolve_model_name, resolve_pretrained)
from .prompt_learner import BackgroundPromptLearner  # noqa: E402
from .prompt_template import PromptTemplate  # noqa: E402
from .synthetic_clip import (SYNTHETIC_CLIP_MODEL_NAME,  # noqa: E402
                             synthetic_clip_path)

__all__ = [
    'FrozenCLIP', 'BackgroundPromptLearner', 'ClipInputConverter',
    'ClipWeights', 'ClipModelSource', 'PromptTemplate', 'resolve_model_name',
    'read_clip_file', 'resolve_pretrained', 'MODEL_CONFIG_DIR',
    'SYNTHETIC_CLIP_MODEL_NAME', 'synthetic_clip_path'
]
