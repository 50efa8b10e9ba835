"""Learnable background prompts, one sequence of context vectors per class."""
from typing import Sequence

import torch
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import nn


def _encode_names(names) -> torch.Tensor:
    """Class names as a uint8 tensor of their newline-joined UTF-8."""
    return torch.tensor(list('\n'.join(names).encode('utf-8')),
                        dtype=torch.uint8)


def _decode_names(code: torch.Tensor) -> list:
    return bytes(code.tolist()).decode('utf-8').split('\n')


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
        # The class list, kept in the state dict as a tensor (mmengine
        # broadcasts every state-dict entry as a tensor at start-up), so
        # that loading prompts of another class list fails.
        self.register_buffer('class_names_utf8',
                             _encode_names(self.class_names))
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
        """Returns the context vectors ctx, (K, L, W): a view of the
        parameter, so that the autograd graph starts here (under DDP, a
        returned leaf would look unused and then be reported twice); under
        ``torch.no_grad()`` the parameter detached."""
        if not torch.is_grad_enabled():
            return self.ctx.detach()
        return self.ctx.view_as(self.ctx)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        """Refuse prompts learnt for another class list, naming both."""
        key = prefix + 'class_names_utf8'
        if key in state_dict:
            saved = _decode_names(state_dict[key])
        else:  # checkpoints written before the names were a tensor
            saved = (state_dict.pop(prefix + '_extra_state', None)
                     or {}).get('class_names')
        if saved is not None and list(saved) != self.class_names:
            raise ValueError(
                'BackgroundPromptLearner: the checkpoint holds prompts '
                f'learnt for classes {list(saved)}, but this model has '
                f'classes {self.class_names}. Load prompts learnt for the '
                'same class list (same names, same order).')
        if key not in state_dict and saved is not None:
            state_dict[key] = self.class_names_utf8
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def extra_repr(self) -> str:
        return (f'num_classes={self.num_classes}, length={self.length}, '
                f'width={self.width}, init={self.init!r}')
