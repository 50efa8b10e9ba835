"""Learnable background prompts, one sequence of context vectors per class."""
from typing import Sequence

import torch
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import nn


@MODELS.register_module()
class BackgroundPromptLearner(BaseModule):
    """Per-class context vectors describing each class's co-occurring
    background (SemPLeS's learnt prompts).

    The vectors live in CLIP's token-embedding space and are spliced into the
    text template by ``FrozenCLIP.encode_prompts``.

    Args:
        class_names (Sequence[str]): K foreground class names, in label
            order. Stored in the state dict: loading prompts learnt for
            another class list fails.
        length (int): L, context vectors per class (30 in the authors' runs).
        width (int): W, CLIP's text width (512 for ViT-B, 96 for
            'semples-synthetic-tiny').
        init (str): 'uniform' draws from U[0, 1) as the authors did;
            'normal' draws from N(0, 0.02^2) as CoOp does.
        init_cfg (dict, optional): unused; see ``init``.
    """

    def __init__(self,
                 class_names: Sequence[str],
                 length: int = 30,
                 width: int = 512,
                 init: str = 'uniform',
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if isinstance(class_names, str) or len(class_names) == 0:
            raise ValueError('BackgroundPromptLearner: class_names must be a '
                             f'non-empty list of names, got {class_names!r}.')
        if length < 1 or width < 1:
            raise ValueError('BackgroundPromptLearner: length and width must '
                             f'be >= 1, got length={length}, width={width}.')
        if init not in ('uniform', 'normal'):
            raise ValueError(f'BackgroundPromptLearner: init={init!r}; use '
                             "'uniform' or 'normal'.")
        self.class_names = [str(name) for name in class_names]
        self.length = length
        self.width = width
        self.init = init
        self.ctx = nn.Parameter(torch.empty(len(self.class_names), length,
                                            width))
        self.reset_ctx()

    def reset_ctx(self):
        """Draw the context vectors afresh from the ``init`` distribution."""
        with torch.no_grad():
            if self.init == 'uniform':
                self.ctx.uniform_(0., 1.)
            else:
                self.ctx.normal_(0., 0.02)

    def init_weights(self):
        """Keep the vectors drawn at construction (or loaded)."""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def forward(self) -> torch.Tensor:
        """Returns the context vectors ctx, (K, L, W), a parameter."""
        return self.ctx

    def get_extra_state(self) -> dict:
        return dict(class_names=list(self.class_names))

    def set_extra_state(self, state: dict):
        saved = list(state.get('class_names', []))
        if saved != self.class_names:
            raise ValueError(
                'BackgroundPromptLearner: the checkpoint holds prompts '
                f'learnt for classes {saved}, but this model has classes '
                f'{self.class_names}. Load prompts learnt for the same class '
                'list (same names, same order).')

    def extra_repr(self) -> str:
        return (f'num_classes={self.num_classes}, length={self.length}, '
                f'width={self.width}, init={self.init!r}')
