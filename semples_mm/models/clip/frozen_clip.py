"""A frozen open_clip CLIP that encodes masked images, texts and prompts."""
import logging
from contextlib import contextmanager, nullcontext
from typing import Dict, List, Optional, Sequence, Tuple

import open_clip
import torch
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from open_clip.convert import convert_state_dict
from open_clip.model import CLIP, resize_pos_embed, resize_text_pos_embed
from open_clip.tokenizer import SimpleTokenizer

from ...utils.paths import resolve_package_path
from .input_conversion import IMAGENET_MEAN, IMAGENET_STD, ClipInputConverter
from .loading import (ClipModelSource, ClipWeights, open_clip_name,
                      read_clip_file, resolve_model_name, resolve_pretrained)
from .prompt_template import PromptTemplate


@contextmanager
def _quiet_open_clip_build():
    """Hide open_clip's build-time warnings ('initialized randomly', 'no CLIP
    weights found' in a local-dir): FrozenCLIP loads the weights itself and
    says itself when there are none."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


@MODELS.register_module()
class FrozenCLIP(BaseModule):
    """An open_clip CLIP kept frozen: weights never learn, always eval mode.

    Images, texts and learnt prompts are encoded into one L2-normalised
    embedding space of dimension D (``self.embed_dim``).

    Args:
        model_name (str): the CLIP architecture, in any form open_clip's
            ``create_model`` takes, resolved offline (see
            :mod:`.loading`): a registered config name ('ViT-B-16',
            this project's 'semples-synthetic-tiny'),
            ``'local-dir:/path/to/folder'`` (a model saved by open_clip:
            ``open_clip_config.json`` and its weights, which are loaded),
            ``'hf-hub:org/name'`` (only from the local Hugging Face cache;
            never downloaded), or the path of a model-config JSON file
            (``/path/ViT-X.json``, bare or under ``model_cfg``).
        pretrained (str, optional): weights: a local file (OpenAI TorchScript
            .pt, a torch.save state dict .pt/.pth/.bin, or .safetensors; a
            ``semples_mm://`` path names a file shipped in the package) or an
            open_clip tag such as 'openai' that is already in the local cache.
            For 'local-dir:' and 'hf-hub:' names it replaces the weights that
            come with the model. None gives the model's own weights for those
            names and random weights otherwise (tests only).
        precision (str): 'fp32', 'fp16' or 'bf16' (open_clip's mixed
            precision: LayerNorms stay fp32). Features are returned in fp32.
        input_mean (Sequence[float]): per-channel mean, in 0-255 pixel units,
            that the images given to :meth:`encode_image` were normalised
            with (the CAM network's data preprocessor).
        input_std (Sequence[float]): the matching std, 0-255 units.
        clip_normalize (bool): True (default, correct) converts the images to
            CLIP's own normalisation before encoding. False feeds them as they
            are, as the SemPLeS authors did (ImageNet-normalised crops straight
            into CLIP); offered to reproduce their runs.
        image_chunk_size (int): images encoded per forward pass.
        grad_checkpointing (bool): recompute CLIP's activations in backward
            instead of storing them, bounding memory when gradients flow to
            the images (costs one more forward pass).
        quick_gelu (bool, optional): force the activation. None (default)
            takes it from the weights (OpenAI files and tags mean QuickGELU),
            and where the file does not say, from the model config.
        prompt_prefix (str): text before the learnt context vectors.
        prompt_suffix (str): text after them, tokenised as text: '.' is the
            end-of-word token '.</w>' (id 269 in CLIP's vocabulary).
        prompt_suffix_ids (Sequence[int], optional): token ids to write
            after the context vectors instead of the tokenised
            ``prompt_suffix`` (which must then stay '.', its default). The
            SemPLeS authors' prompts end in the bare '.' byte token, id 13:
            ``prompt_suffix_ids=(13, )``. None (default) tokenises
            ``prompt_suffix``.
        cache_dir (str, optional): open_clip download cache, for tags, and
            the Hugging Face cache read for 'hf-hub:' names.
        allow_download (bool): let a tag missing from the cache be
            downloaded. False (default) fails at once with the file to fetch.
        init_cfg (dict, optional): unused; weights come from ``pretrained``.

    Checkpoints: CLIP's weights stay in this module's state dict. That makes
    every training checkpoint larger (ViT-B/16 about 600 MB in fp32), but
    resuming never depends on finding ``pretrained`` again or on a random
    initialisation being reproduced, and a checkpoint is self-contained.
    """

    def __init__(self,
                 model_name: str = 'ViT-B-16',
                 pretrained: Optional[str] = None,
                 precision: str = 'fp32',
                 input_mean: Sequence[float] = IMAGENET_MEAN,
                 input_std: Sequence[float] = IMAGENET_STD,
                 clip_normalize: bool = True,
                 image_chunk_size: int = 64,
                 grad_checkpointing: bool = False,
                 quick_gelu: Optional[bool] = None,
                 prompt_prefix: str = 'a photo of',
                 prompt_suffix: str = '.',
                 prompt_suffix_ids: Optional[Sequence[int]] = None,
                 cache_dir: Optional[str] = None,
                 allow_download: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if precision not in ('fp32', 'fp16', 'bf16'):
            raise ValueError(f'FrozenCLIP: precision={precision!r}; use '
                             "'fp32', 'fp16' or 'bf16'.")
        if image_chunk_size < 1:
            raise ValueError('FrozenCLIP: image_chunk_size must be >= 1, got '
                             f'{image_chunk_size}.')
        source = resolve_model_name(model_name, cache_dir)
        self._check_supported(source)
        self.model_name = model_name
        self.pretrained = pretrained
        self.image_chunk_size = image_chunk_size

        pretrained = resolve_package_path(pretrained)
        if pretrained:
            weights = resolve_pretrained(source.tag_model_name, pretrained,
                                         cache_dir, allow_download)
        else:
            bundled = source.bundled_weights()
            weights = read_clip_file(bundled) if bundled else None
        self.quick_gelu = self._choose_quick_gelu(quick_gelu, weights,
                                                  source)
        with open_clip_name(source) as name, _quiet_open_clip_build():
            # open_clip builds the architecture (and its preprocessing and
            # tokenizer) from the name; the weights are loaded below, where
            # their activation and shapes are checked.
            self.model = open_clip.create_model(
                name,
                pretrained=None,
                load_weights=False,
                pretrained_image=False,
                pretrained_text=False,
                precision=precision,
                force_preprocess_cfg=weights.preprocess if weights else None,
                cache_dir=cache_dir,
                quick_gelu=self.quick_gelu)
            self.tokenizer = open_clip.get_tokenizer(name,
                                                     cache_dir=cache_dir)
        if not isinstance(self.model, CLIP):
            raise NotImplementedError(
                f'FrozenCLIP: model_name={model_name!r} builds a '
                f'{type(self.model).__name__}; only the standard open_clip '
                'CLIP class (built-in text tower) is supported.')
        if not isinstance(self.tokenizer, SimpleTokenizer):
            raise NotImplementedError(
                f'FrozenCLIP: model_name={model_name!r} comes with a '
                f'{type(self.tokenizer).__name__}; only open_clip\'s CLIP '
                'tokenizer (SimpleTokenizer) is supported.')
        if weights is not None:
            self._load_weights(weights)
        else:
            logging.getLogger(__name__).warning(
                f'FrozenCLIP: model_name={model_name!r} with pretrained=None '
                'has random weights (right for tests and timings only; give '
                'pretrained for real features).')
        self.model.requires_grad_(False)
        self.model.set_grad_checkpointing(grad_checkpointing)
        self.model.eval()

        self.context_length = self.model.context_length
        self.text_width = self.model.token_embedding.embedding_dim
        self.embed_dim = self.model.visual.output_dim
        self.input_converter = ClipInputConverter.for_model(
            self.model, input_mean, input_std, clip_normalize)
        self.prompt_template = PromptTemplate(
            self.tokenizer, self.context_length,
            self.model.token_embedding.num_embeddings, prompt_prefix,
            prompt_suffix, prompt_suffix_ids)
        self._text_cache: Dict[Tuple[str, str], torch.Tensor] = {}

    @property
    def image_size(self) -> Tuple[int, int]:
        return self.input_converter.image_size

    @property
    def interpolation(self) -> str:
        return self.input_converter.interpolation

    # ------------------------------------------------------------ building
    @staticmethod
    def _check_supported(source: ClipModelSource):
        """Refuse, before building, what encode_prompts cannot drive.

        Checked on the config because building some of them would reach the
        network (Hugging Face text towers and tokenizers).
        """
        cfg, text_cfg = source.model_cfg, source.model_cfg['text_cfg']
        if (cfg.get('custom_text') or 'hf_model_name' in text_cfg
                or 'multimodal_cfg' in cfg):
            raise NotImplementedError(
                f'FrozenCLIP: model_name={source.model_name!r} is a '
                'custom-text model (custom_text, hf_model_name or '
                'multimodal_cfg in its config); only the standard open_clip '
                'CLIP class (built-in text tower) is supported.')
        if text_cfg.get('hf_tokenizer_name'):
            raise NotImplementedError(
                f'FrozenCLIP: model_name={source.model_name!r} uses the '
                f"Hugging Face tokenizer {text_cfg['hf_tokenizer_name']!r}; "
                "only open_clip's CLIP tokenizer (SimpleTokenizer) is "
                'supported.')

    def _choose_quick_gelu(self, forced: Optional[bool],
                           weights: Optional[ClipWeights],
                           source: ClipModelSource) -> bool:
        """The activation: forced, else what the weights say, else config."""
        config_value = bool(source.model_cfg.get('quick_gelu', False))
        file_value = weights.quick_gelu if weights is not None else None
        if forced is not None:
            if file_value is not None and forced != file_value:
                logging.getLogger(__name__).warning(
                    f'FrozenCLIP: quick_gelu={forced} is forced, but '
                    f'{weights.path} was trained with '
                    f'quick_gelu={file_value}; its features will be off.')
            return forced
        return config_value if file_value is None else file_value

    def _load_weights(self, weights: ClipWeights):
        """Load a state dict into ``self.model``, naming the file on error.

        The state dict goes through the steps of open_clip's
        ``load_checkpoint`` (third-party conversion, scalar/1-d logit
        parameters, position-embedding resizing); that function itself
        re-reads the file and cannot read OpenAI's TorchScript archives.
        """
        state_dict = convert_state_dict(self.model, dict(weights.state_dict))
        persistent = self.model.state_dict()
        # Non-persistent buffers (the causal attention mask) are rebuilt by
        # the model; TorchScript archives carry them anyway.
        for name, _ in self.model.named_buffers():
            if name not in persistent:
                state_dict.pop(name, None)
        for name in ('logit_scale', 'logit_bias'):
            own = getattr(self.model, name, None)
            if (name in state_dict and own is not None
                    and state_dict[name].ndim != own.ndim):
                state_dict[name] = state_dict[name].reshape(own.shape)
        self._check_shapes(state_dict, persistent, weights)
        resize_pos_embed(state_dict, self.model)
        resize_text_pos_embed(state_dict, self.model)
        try:
            missing, unexpected = self.model.load_state_dict(
                state_dict, strict=False)
        except RuntimeError as error:
            raise ValueError(
                f'FrozenCLIP: the weights in {weights.path} do not fit '
                f'model_name={self.model_name!r}: {error}') from error
        if missing or unexpected:
            raise ValueError(
                f'FrozenCLIP: the weights in {weights.path} '
                f'({weights.file_format}) do not fit model_name='
                f'{self.model_name!r}: missing keys {missing[:5]}, '
                f'unexpected keys {unexpected[:5]}. Check model_name.')

    def _check_shapes(self, state_dict: Dict[str, torch.Tensor],
                      expected: Dict[str, torch.Tensor],
                      weights: ClipWeights):
        """Fail on a CLIP of another size, naming file, model and shape.

        Position embeddings may differ in length (open_clip resizes them to
        the model's image grid and context length), never in width.
        """
        resizable = ('positional_embedding', 'visual.positional_embedding')
        mismatched = []
        for key, own in expected.items():  # the model's order
            if key not in state_dict:
                continue  # reported as missing by the load
            got, want = tuple(state_dict[key].shape), tuple(own.shape)
            if key in resizable:
                fits = len(got) == len(want) and got[1:] == want[1:]
            else:
                fits = got == want
            if not fits:
                mismatched.append((key, got, want))
        if not mismatched:
            return
        key, got, want = mismatched[0]
        raise ValueError(
            f'FrozenCLIP: the weights in {weights.path} do not fit '
            f'model_name={self.model_name!r}: {key} has shape {got} in the '
            f'file but {want} in the model ({len(mismatched)} tensors of '
            'another shape in all). The file holds a CLIP of another size: '
            'pass the model_name it was trained with (a registered name, a '
            "'local-dir:' folder or a model-config JSON of that size).")

    # --------------------------------------------------------- frozen state
    def train(self, mode: bool = True):
        """Stay in eval mode whatever the parent asks (dropout, norms)."""
        return super().train(False)

    def init_weights(self):
        """Nothing to initialise: the weights come from ``pretrained``."""

    def _load_from_state_dict(self, *args, **kwargs):
        # New weights make cached text features stale.
        self._text_cache.clear()
        super()._load_from_state_dict(*args, **kwargs)

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of CLIP's weights (fp16/bf16 under mixed precision)."""
        return self.model.visual.conv1.weight.dtype

    # ------------------------------------------------------------- images
    def to_clip_input(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) images normalised with input_mean/std -> (N, 3, h,
        w) CLIP input in the weights' dtype (see :class:`ClipInputConverter`;
        unchanged in value if ``clip_normalize=False``)."""
        return self.input_converter(images).to(self.dtype)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Encode images; gradients flow back to ``images``.

        The images are converted to CLIP's normalisation (see
        ``clip_normalize``) and resized to CLIP's input size (bicubic).
        When ``images`` does not require grad (or grad is disabled), the
        encoding runs without autograd: nothing could receive a gradient.

        Args:
            images (Tensor): (N, 3, H, W) normalised with input_mean/std,
                e.g. the CAM-masked crops M * X and (1 - M) * X.

        Returns:
            Tensor: (N, D) L2-normalised fp32 image features.
        """
        needs_grad = torch.is_grad_enabled() and images.requires_grad
        if images.shape[0] == 0:
            # No (image, class) pair in the batch: an empty result that is
            # still part of the graph, so the losses' zero can backpropagate.
            return images.new_zeros((0, self.embed_dim),
                                    dtype=torch.float32) + images.sum() * 0
        with nullcontext() if needs_grad else torch.no_grad():
            x = self.to_clip_input(images)
            features = [
                self.model.encode_image(chunk, normalize=True)
                for chunk in x.split(self.image_chunk_size)
            ]
        return torch.cat(features).float()

    # -------------------------------------------------------------- texts
    def tokenize(self, texts: List[str]) -> torch.Tensor:
        """Token ids (N, C); raises if a text would be truncated."""
        for text in texts:
            length = len(self.tokenizer.encode(text)) + 2  # SOT and EOT
            if length > self.context_length:
                raise ValueError(
                    f'FrozenCLIP: text {text!r} has {length} tokens, more '
                    f'than the context length {self.context_length} of '
                    f'{self.model_name}; shorten it.')
        return self.tokenizer(texts)

    @torch.no_grad()
    def encode_text(self, texts: List[str]) -> torch.Tensor:
        """Encode texts, caching each (text, device) feature.

        Args:
            texts (list[str]): N texts, e.g. 'a photo of a boat.'.

        Returns:
            Tensor: (N, D) L2-normalised fp32 text features, no grad.
        """
        if isinstance(texts, str):
            texts = [texts]
        device = self.input_converter.scale.device
        missing = [t for t in dict.fromkeys(texts)
                   if (t, str(device)) not in self._text_cache]
        if missing:
            tokens = self.tokenize(missing).to(device)
            features = self.model.encode_text(tokens, normalize=True).float()
            for text, feature in zip(missing, features):
                self._text_cache[(text, str(device))] = feature
        if not texts:
            return torch.zeros((0, self.embed_dim), device=device)
        return torch.stack(
            [self._text_cache[(t, str(device))] for t in texts])

    def encode_prompts(self, ctx: torch.Tensor) -> torch.Tensor:
        """Encode learnt context vectors spliced into the prompt template
        (:class:`PromptTemplate`): [SOT] 'a photo of' ctx_1..ctx_L '.' [EOT],
        read at the EOT as any text. Gradients flow to ``ctx``.

        Args:
            ctx (Tensor): (K, L, W) context vectors, W = ``self.text_width``.

        Returns:
            Tensor: (K, D) L2-normalised fp32 prompt features.
        """
        if ctx.dim() != 3 or ctx.shape[-1] != self.text_width:
            raise ValueError(
                f'FrozenCLIP.encode_prompts expects ctx (K, L, '
                f'{self.text_width}), got shape {tuple(ctx.shape)}; set the '
                f'prompt learner width to {self.text_width}.')
        return self.prompt_template.encode(self.model, ctx)
