"""Reading CLIP weights from local files or open_clip pretrained tags.

``FrozenCLIP`` accepts ``pretrained`` as

- an OpenAI TorchScript archive (the ``ViT-B-16.pt`` files OpenAI released),
- a state dict saved with ``torch.save`` (``.pt``, ``.pth``, ``.bin``), in
  OpenAI's or open_clip's key layout, optionally wrapped in
  ``{'state_dict': ...}`` or prefixed with ``module.``,
- a ``.safetensors`` file,
- an open_clip pretrained tag (``'openai'``, ``'laion2b_s34b_b79k'``), which
  is resolved to a file that must already be in the local cache: this module
  never reaches the network unless ``allow_download=True``, so an offline
  machine gets an immediate error naming the file to fetch instead of a hang.

It also tells whether the weights were trained with QuickGELU. OpenAI's
weights were, and the activation changes every feature, so a wrong guess
silently gives a different model. The evidence used, strongest first:
the file is an OpenAI TorchScript archive or a state dict with OpenAI's
extra entries (``input_resolution``, ``context_length``, ``vocab_size``);
a ``quick_gelu`` entry in a ``.safetensors`` file's metadata (this project's
own checkpoints write it); the ``quick_gelu`` flag of an open_clip tag.
Otherwise the file says nothing and the model config decides.
"""
import os
import os.path as osp
import warnings
import zipfile
from dataclasses import dataclass, field
from typing import Dict, Optional

import open_clip
import torch

# Entries of OpenAI's TorchScript state dicts that are not weights.
OPENAI_EXTRA_KEYS = ('input_resolution', 'context_length', 'vocab_size')
# open_clip's default file name for weights hosted on the Hugging Face hub.
HF_DEFAULT_WEIGHTS = 'open_clip_pytorch_model.bin'


@dataclass
class ClipWeights:
    """CLIP weights read from one file.

    Attributes:
        state_dict: parameter name -> tensor, without OpenAI's extra entries.
        path: the file they came from.
        file_format: 'openai-torchscript', 'openai-state-dict', 'safetensors'
            or 'state-dict'.
        quick_gelu: True/False where the file (or tag) says which activation
            the weights were trained with, None where it does not say.
        preprocess: image mean/std/interpolation the weights expect, from an
            open_clip tag; empty for plain files (model defaults apply).
    """
    state_dict: Dict[str, torch.Tensor]
    path: str
    file_format: str
    quick_gelu: Optional[bool]
    preprocess: Dict = field(default_factory=dict)


def is_torchscript_archive(path: str) -> bool:
    """Whether ``path`` is a TorchScript (``torch.jit.save``) archive.

    Both TorchScript archives and ``torch.save`` files are zip files; only
    TorchScript ones carry serialised code and ``constants.pkl``.
    """
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any(name.endswith('/constants.pkl') for name in names) and any(
        '/code/' in name for name in names)


def _unwrap_state_dict(checkpoint, path: str) -> Dict[str, torch.Tensor]:
    """The tensor dict inside a loaded checkpoint object."""
    if isinstance(checkpoint, dict) and 'state_dict' in checkpoint:
        checkpoint = checkpoint['state_dict']
    if not isinstance(checkpoint, dict) or not checkpoint:
        raise ValueError(
            f'FrozenCLIP: {path} holds a {type(checkpoint).__name__}, not a '
            'CLIP state dict. Pass an OpenAI .pt archive, a state dict '
            'saved with torch.save, or a .safetensors file.')
    if all(key.startswith('module.') for key in checkpoint):
        checkpoint = {key[len('module.'):]: value
                      for key, value in checkpoint.items()}
    return checkpoint


def read_clip_file(path: str) -> ClipWeights:
    """Read CLIP weights from a local file of any supported format."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'FrozenCLIP: pretrained file {path} does '
                                'not exist.')
    quick_gelu = None
    if path.endswith('.safetensors'):
        from safetensors import safe_open
        from safetensors.torch import load_file
        state_dict = load_file(path, device='cpu')
        with safe_open(path, framework='pt') as handle:
            metadata = handle.metadata() or {}
        flag = metadata.get('quick_gelu', '').lower()
        if flag in ('true', 'false'):
            quick_gelu = flag == 'true'
        file_format = 'safetensors'
    elif is_torchscript_archive(path):
        # OpenAI released its CLIP weights as TorchScript archives; no other
        # CLIP distribution uses the format, so it implies OpenAI's QuickGELU.
        with warnings.catch_warnings():
            # torch deprecates TorchScript, but OpenAI's files are in it.
            warnings.simplefilter('ignore', FutureWarning)
            archive = torch.jit.load(path, map_location='cpu')
        state_dict = dict(archive.state_dict())
        file_format = 'openai-torchscript'
        quick_gelu = True
    else:
        state_dict = _unwrap_state_dict(
            torch.load(path, map_location='cpu', weights_only=True), path)
        file_format = 'state-dict'
    if any(key in state_dict for key in OPENAI_EXTRA_KEYS):
        if file_format == 'state-dict':
            file_format = 'openai-state-dict'
        quick_gelu = True
    state_dict = {key: value for key, value in state_dict.items()
                  if key not in OPENAI_EXTRA_KEYS}
    return ClipWeights(state_dict, path, file_format, quick_gelu)


def _cached_tag_file(pretrained_cfg: Dict,
                     cache_dir: Optional[str]) -> Optional[str]:
    """The local file of an open_clip tag if it is cached, else None.

    Looks where open_clip's downloaders would have put it, without any
    network access.
    """
    if pretrained_cfg.get('file'):
        return pretrained_cfg['file']
    hf_hub = pretrained_cfg.get('hf_hub', '')
    if hf_hub:
        from huggingface_hub import try_to_load_from_cache
        repo_id, filename = osp.split(hf_hub)
        filename = filename or HF_DEFAULT_WEIGHTS
        candidates = [filename]
        if filename.endswith(('.bin', '.pth')):
            # open_clip prefers a .safetensors twin where the hub has one.
            candidates.insert(0, filename[:-4] + '.safetensors')
        for candidate in candidates:
            cached = try_to_load_from_cache(
                repo_id, candidate, cache_dir=cache_dir)
            if isinstance(cached, str) and osp.isfile(cached):
                return cached
    url = pretrained_cfg.get('url', '')
    if url:
        url_cache = cache_dir or osp.expanduser('~/.cache/clip')
        cached = osp.join(url_cache, osp.basename(url))
        if osp.isfile(cached):
            return cached
    return None


def _describe_download(pretrained_cfg: Dict) -> str:
    """Where the file of an open_clip tag can be downloaded from."""
    sources = []
    if pretrained_cfg.get('url'):
        sources.append(pretrained_cfg['url'])
    if pretrained_cfg.get('hf_hub'):
        repo_id, filename = osp.split(pretrained_cfg['hf_hub'])
        sources.append(f'huggingface hub {repo_id}, file '
                       f'{filename or HF_DEFAULT_WEIGHTS}')
    return ' or '.join(sources) or 'open_clip\'s pretrained config'


def resolve_pretrained_tag(model_name: str,
                           tag: str,
                           cache_dir: Optional[str] = None,
                           allow_download: bool = False) -> ClipWeights:
    """Weights of an open_clip pretrained tag from the local cache.

    Raises:
        FileNotFoundError: the tag's file is not cached and ``allow_download``
            is False (or HF_HUB_OFFLINE is set); the message names the file to
            download and tells to pass its path as ``pretrained``.
    """
    pretrained_cfg = open_clip.get_pretrained_cfg(model_name, tag)
    path = _cached_tag_file(pretrained_cfg, cache_dir)
    offline = os.environ.get('HF_HUB_OFFLINE', '0').lower() in ('1', 'true',
                                                                'yes')
    if path is None and allow_download and not offline:
        path = open_clip.download_pretrained(pretrained_cfg,
                                             cache_dir=cache_dir)
    if path is None:
        raise FileNotFoundError(
            f'FrozenCLIP: the weights of model_name={model_name!r} '
            f'pretrained={tag!r} are not in the local cache, and FrozenCLIP '
            'does not download' +
            (' (HF_HUB_OFFLINE is set)' if offline and allow_download else
             ' unless allow_download=True') +
            f'. Download {_describe_download(pretrained_cfg)} and pass '
            "pretrained='/path/to/file' (the downloaded file).")
    weights = read_clip_file(path)
    if 'quick_gelu' in pretrained_cfg or weights.quick_gelu is None:
        weights.quick_gelu = bool(pretrained_cfg.get('quick_gelu', False))
    weights.preprocess = {
        key: pretrained_cfg[key]
        for key in ('mean', 'std', 'interpolation') if key in pretrained_cfg
    }
    return weights


def resolve_pretrained(model_name: str,
                       pretrained: str,
                       cache_dir: Optional[str] = None,
                       allow_download: bool = False) -> ClipWeights:
    """Weights named by ``pretrained``: a local file or an open_clip tag."""
    if osp.isfile(pretrained):
        return read_clip_file(pretrained)
    if open_clip.get_pretrained_cfg(model_name, pretrained):
        return resolve_pretrained_tag(model_name, pretrained, cache_dir,
                                      allow_download)
    tags = open_clip.list_pretrained_tags_by_model(model_name)
    raise FileNotFoundError(
        f'FrozenCLIP: pretrained={pretrained!r} is neither an existing file '
        f'nor an open_clip pretrained tag of model {model_name!r} (' +
        (f'its tags: {tags}' if tags else 'it has no tags') +
        '). Pass the path of a CLIP checkpoint file.')
