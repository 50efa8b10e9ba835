"""Learnt context vectors spliced into a text template and encoded by
CLIP's own text tower."""
from contextlib import contextmanager
from typing import List, Optional, Sequence

import torch
from open_clip.model import CLIP
from open_clip.tokenizer import SimpleTokenizer

# Token id written where the context vectors go: its embedding is replaced,
# and 0 is below the end-of-text id that argmax pooling looks for.
PLACEHOLDER_ID = 0


class PromptTemplate:
    """Tokens ``[SOT] prefix [ctx_1 .. ctx_L] suffix [EOT] [pad ...]``
    (CoOp's prompt), encoded by open_clip's ``CLIP.encode_text``: the
    context vectors replace the token embeddings of L placeholder tokens,
    so the text tower, its pooling at the EOT, ln_final and projection are
    open_clip's own.

    Args:
        tokenizer (SimpleTokenizer): CLIP's tokenizer.
        context_length (int): the text tower's.
        vocab_size (int): the token embedding's.
        prefix (str): text before the context vectors ('a photo of').
        suffix (str): text after them, tokenised as text ('.' is the
            end-of-word token '.</w>', id 269).
        suffix_ids (Sequence[int], optional): token ids after the context
            vectors instead of the tokenised ``suffix`` (which must then
            stay '.'), e.g. the SemPLeS authors' bare '.' byte token:
            ``(13, )``.
    """

    def __init__(self, tokenizer: SimpleTokenizer, context_length: int,
                 vocab_size: int, prefix: str = 'a photo of',
                 suffix: str = '.',
                 suffix_ids: Optional[Sequence[int]] = None):
        self.context_length = context_length
        self.sot_id = tokenizer.sot_token_id
        self.eot_id = tokenizer.eot_token_id
        self.prefix_ids = tokenizer.encode(prefix) if prefix else []
        if suffix_ids is None:
            self.suffix_ids = tokenizer.encode(suffix) if suffix else []
            self.text = f'{prefix} {suffix}'.strip()
        else:
            self.suffix_ids = self._checked_ids(suffix, suffix_ids,
                                                vocab_size)
            self.text = ' '.join(([prefix] if prefix else []) +
                                 [f'<{i}>' for i in self.suffix_ids])
        # [SOT] prefix | ctx | suffix [EOT]: the context starts after the
        # start token and the prefix
        self.insert_index = 1 + len(self.prefix_ids)
        self.max_length = context_length - 2 - len(self.prefix_ids) - len(
            self.suffix_ids)
        if self.max_length < 0:
            raise ValueError(
                f'FrozenCLIP: the prompt template {self.text!r} takes more '
                f'tokens than the context length {context_length}.')

    def _checked_ids(self, suffix: str, suffix_ids: Sequence[int],
                     vocab_size: int) -> List[int]:
        if suffix != '.':
            raise ValueError(
                f'FrozenCLIP: prompt_suffix={suffix!r} and prompt_suffix_ids='
                f'{suffix_ids!r} both give the text after the context '
                'vectors; set only one of them.')
        if isinstance(suffix_ids, (int, str)) or not all(
                isinstance(i, int) and not isinstance(i, bool)
                for i in suffix_ids):
            raise ValueError(
                f'FrozenCLIP: prompt_suffix_ids={suffix_ids!r} must be a '
                'sequence of token ids (ints), e.g. (13, ).')
        special = (self.sot_id, self.eot_id)
        wrong = [i for i in suffix_ids
                 if not 0 <= i < vocab_size or i in special]
        if wrong:
            raise ValueError(
                f'FrozenCLIP: prompt_suffix_ids {wrong} are not ordinary '
                f'token ids (vocabulary 0..{vocab_size - 1} without the '
                f'start/end tokens {special}).')
        return list(suffix_ids)

    def tokens(self, length: int) -> torch.Tensor:
        """(1, C) token ids with ``length`` placeholders for the context."""
        if length > self.max_length:
            raise ValueError(
                f'FrozenCLIP: {length} context vectors do not fit the context '
                f'length {self.context_length} with the template '
                f'{self.text!r}; use a prompt length of at most '
                f'{self.max_length}.')
        ids = [self.sot_id, *self.prefix_ids, *[PLACEHOLDER_ID] * length,
               *self.suffix_ids, self.eot_id]
        tokens = torch.zeros((1, self.context_length), dtype=torch.long)
        tokens[0, :len(ids)] = torch.tensor(ids)
        return tokens

    def encode(self, model: CLIP, ctx: torch.Tensor) -> torch.Tensor:
        """(K, L, W) context vectors -> (K, D) L2-normalised fp32 prompt
        features; gradients flow to ``ctx``."""
        num_prompts, length, _ = ctx.shape
        tokens = self.tokens(length).to(ctx.device).expand(num_prompts, -1)
        with self._spliced(model.token_embedding, ctx):
            features = model.encode_text(tokens, normalize=True)
        return features.float()

    @contextmanager
    def _spliced(self, token_embedding: torch.nn.Module, ctx: torch.Tensor):
        """While open, the embedding's output holds ``ctx`` at the
        placeholders."""
        start, end = self.insert_index, self.insert_index + ctx.shape[1]

        def splice(module, inputs, embedded):  # (K, C, W)
            return torch.cat([embedded[:, :start], ctx.to(embedded.dtype),
                              embedded[:, end:]], dim=1)

        handle = token_embedding.register_forward_hook(splice)
        try:
            yield
        finally:
            handle.remove()
