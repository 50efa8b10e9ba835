"""Which CLIP a ``FrozenCLIP`` builds and which weights it loads, offline.

open_clip's factory does most of it: ``parse_model_name`` reads the
'local-dir:' / 'hf-hub:' forms, ``get_model_config`` a registered name's
config ('ViT-B/16' read as 'ViT-B-16'), ``create_model`` and
``get_tokenizer`` build the architecture, its preprocessing and its
tokenizer from a name, and the weight file of a saved folder is the one
its ``create_model`` would pick. What this module adds, each for a reason
open_clip does not cover:

- 'hf-hub:' names are read from the local Hugging Face cache only (the
  cached snapshot is handed to open_clip as a 'local-dir:' folder); a
  missing file fails at once naming what to fetch, where open_clip would
  try the network.
- A model-config JSON file as a name, for architectures registered nowhere
  (open_clip has no such form): handed over as a temporary 'local-dir:'.
- ``pretrained`` files in OpenAI's TorchScript format (open_clip reads
  state dicts only), and whether weights were trained with QuickGELU, which
  a file does not tell open_clip and which silently changes every feature.
- Pretrained tags ('openai', 'laion2b_s34b_b79k') from the local cache
  only; open_clip would download.
"""
import difflib
import json
import os
import os.path as osp
import tempfile
import warnings
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, Optional

import open_clip
import torch
from open_clip.constants import HF_CONFIG_NAME, HF_SAFE_WEIGHTS_NAME
from open_clip.factory import parse_model_name

from ...utils.checkpoints import read_state_dict
from ...utils.paths import resolve_package_path

LOCAL_DIR_PREFIX = 'local-dir:'
# Keys open_clip requires of a model config (its registry skips files
# without them).
MODEL_CFG_KEYS = ('embed_dim', 'vision_cfg', 'text_cfg')
# Entries of OpenAI's TorchScript state dicts that are not weights.
OPENAI_EXTRA_KEYS = ('input_resolution', 'context_length', 'vocab_size')
# open_clip's default file name for weights hosted on the Hugging Face hub.
HF_DEFAULT_WEIGHTS = 'open_clip_pytorch_model.bin'
ACCEPTED_FORMS = (
    "a registered open_clip config name (open_clip.list_models(), e.g. "
    "'ViT-B-16' or this project's 'semples-synthetic-tiny'), "
    "'local-dir:/path/to/folder' (open_clip_config.json and the weights, as "
    "open_clip saves a model), 'hf-hub:org/name' (already in the local "
    "Hugging Face cache) or the path of a model-config JSON file "
    "('/path/ViT-X.json')")


# ------------------------------------------------------------------ names
@dataclass
class ClipModelSource:
    """A resolved ``model_name``.

    Attributes:
        model_name: the name as given.
        kind: 'registered', 'local-dir', 'hf-hub' or 'config-file'.
        model_cfg: open_clip model config (embed_dim, vision_cfg, text_cfg,
            quick_gelu, ...).
        tag_model_name: the name open_clip lists pretrained tags under
            ('ViT-B-16' for 'ViT-B/16'); the name itself for other forms.
        folder: the saved model's folder (local-dir, cached hf-hub).
    """
    model_name: str
    kind: str
    model_cfg: Dict
    tag_model_name: str = ''
    folder: Optional[str] = None

    def bundled_weights(self) -> Optional[str]:
        """The weight file that comes with the name: the one open_clip's
        ``create_model`` would load from the folder; None for a registered
        name or a config file (weights come from ``pretrained``).

        Raises:
            FileNotFoundError: a folder without weights; the message names
                what to add.
        """
        if self.folder is None:
            return None
        # open_clip's own choice among the folder's *.safetensors, *.bin and
        # *.pth (a private helper of its factory: the one use of it here)
        from open_clip.factory import _find_checkpoint_in_dir
        found = _find_checkpoint_in_dir(Path(self.folder))
        if found is not None:
            return found
        if self.kind == 'hf-hub':
            repo_id = parse_model_name(self.model_name)[1]
            raise FileNotFoundError(
                f'FrozenCLIP: model_name={self.model_name!r}: the config of '
                f'{repo_id} is cached but none of its weights are, and '
                'FrozenCLIP never downloads. ' +
                _fetch_advice(repo_id, (HF_SAFE_WEIGHTS_NAME, )))
        raise FileNotFoundError(
            f'FrozenCLIP: model_name={self.model_name!r}: folder '
            f'{self.folder} holds no CLIP weights (open_clip looks for '
            f'*.safetensors, *.bin and *.pth, e.g. {HF_SAFE_WEIGHTS_NAME}). '
            'Save them there, or pass pretrained=/path/to/weights.')


def resolve_model_name(model_name: str,
                       cache_dir: Optional[str] = None) -> ClipModelSource:
    """Read the architecture ``model_name`` names (see the module doc).

    Args:
        model_name: any accepted form.
        cache_dir: Hugging Face cache for 'hf-hub:' names (None: the default
            cache, HF_HUB_CACHE / HF_HOME).

    Raises:
        ValueError: an unknown name (the message lists the closest
            registered names and the accepted forms) or a config that is not
            an open_clip model config.
        FileNotFoundError: a missing folder, file or uncached repository.
    """
    if not isinstance(model_name, str) or not model_name:
        raise ValueError(f'FrozenCLIP: model_name={model_name!r}; give '
                         f'{ACCEPTED_FORMS}.')
    schema, identifier = parse_model_name(model_name)
    if schema == 'local-dir':
        folder = resolve_package_path(identifier)
        return ClipModelSource(model_name, 'local-dir',
                               _saved_model_cfg(folder, model_name),
                               model_name, folder)
    if schema == 'hf-hub':
        folder = _cached_hf_snapshot(identifier, model_name, cache_dir)
        return ClipModelSource(model_name, 'hf-hub',
                               _saved_model_cfg(folder, model_name),
                               model_name, folder)
    if model_name.endswith('.json'):
        return ClipModelSource(model_name, 'config-file',
                               _config_file_model_cfg(model_name),
                               model_name)
    registered = model_name.replace('/', '-')  # as open_clip's create_model
    model_cfg = open_clip.get_model_config(registered)
    if model_cfg is None:
        raise ValueError(_unknown_name_message(model_name))
    return ClipModelSource(model_name, 'registered', model_cfg, registered)


@contextmanager
def open_clip_name(source: ClipModelSource) -> Iterator[str]:
    """A name open_clip's ``create_model`` / ``get_tokenizer`` build
    ``source``'s architecture and tokenizer from, valid inside the block."""
    if source.kind == 'registered':
        yield source.tag_model_name
    elif source.folder is not None:
        yield LOCAL_DIR_PREFIX + source.folder
    else:  # a config file: open_clip reads configs only from folders
        with tempfile.TemporaryDirectory(prefix='semples_clip_cfg_') as tmp:
            with open(osp.join(tmp, HF_CONFIG_NAME), 'w') as handle:
                json.dump(dict(model_cfg=source.model_cfg), handle)
            yield LOCAL_DIR_PREFIX + tmp


def _unknown_name_message(model_name: str) -> str:
    """Short: the closest registered names and the accepted forms."""
    by_lower = {name.lower(): name for name in open_clip.list_models()}
    close = difflib.get_close_matches(
        model_name.replace('/', '-').lower(), list(by_lower), n=5,
        cutoff=0.6)
    message = (f'FrozenCLIP: model_name={model_name!r} is not a registered '
               'open_clip model config')
    if close:
        message += ('; closest registered names: ' +
                    ', '.join(repr(by_lower[name]) for name in close))
    message += f'. model_name takes {ACCEPTED_FORMS}.'
    if osp.isdir(model_name):
        message += (f' {model_name!r} is a folder: for a saved model use '
                    f"model_name='{LOCAL_DIR_PREFIX}{model_name}'.")
    return message


def _read_json(path: str, model_name: str) -> Dict:
    try:
        with open(path, 'r', encoding='utf-8') as handle:
            content = json.load(handle)
    except json.JSONDecodeError as error:
        raise ValueError(f'FrozenCLIP: model_name={model_name!r}: {path} is '
                         f'not valid JSON ({error}).') from error
    if not isinstance(content, dict):
        raise ValueError(f'FrozenCLIP: model_name={model_name!r}: {path} '
                         f'holds a {type(content).__name__}, not an open_clip '
                         'model config.')
    return content


def _check_model_cfg(model_cfg, path: str, model_name: str) -> Dict:
    missing = [key for key in MODEL_CFG_KEYS
               if not isinstance(model_cfg, dict) or key not in model_cfg]
    if missing:
        found = sorted(model_cfg) if isinstance(model_cfg, dict) else []
        raise ValueError(
            f'FrozenCLIP: model_name={model_name!r}: the model config in '
            f'{path} lacks {missing} (has {found}); an open_clip model config '
            f'needs {list(MODEL_CFG_KEYS)}, as in open_clip/model_configs/'
            'ViT-B-16.json.')
    return model_cfg


def _saved_model_cfg(folder: str, model_name: str) -> Dict:
    """The model config of a folder in open_clip's saved layout."""
    if not osp.isdir(folder):
        raise FileNotFoundError(
            f'FrozenCLIP: model_name={model_name!r}: folder {folder} does '
            'not exist.')
    path = osp.join(folder, HF_CONFIG_NAME)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'FrozenCLIP: model_name={model_name!r}: {path} does not exist; '
            f'a saved model folder holds {HF_CONFIG_NAME} and its weights, '
            'as open_clip saves a model.')
    content = _read_json(path, model_name)
    if 'model_cfg' not in content:
        raise ValueError(
            f'FrozenCLIP: model_name={model_name!r}: {path} has no '
            f"'model_cfg' (keys {sorted(content)}); open_clip saves a model "
            "as {'model_cfg': {...}, 'preprocess_cfg': {...}}. For a bare "
            f"model config, pass the file itself: model_name='{path}'.")
    return _check_model_cfg(content['model_cfg'], path, model_name)


def _config_file_model_cfg(model_name: str) -> Dict:
    """A model-config JSON file, bare or wrapped in ``model_cfg``."""
    path = resolve_package_path(model_name)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'FrozenCLIP: model_name={model_name!r} names a model-config '
            f'JSON file, but {path} does not exist.')
    content = _read_json(path, model_name)
    return _check_model_cfg(content.get('model_cfg', content), path,
                            model_name)


def _fetch_advice(repo_id: str, files) -> str:
    return (f'On a machine with network, fill the cache with `hf download '
            f'{repo_id} {" ".join(files)}` (same HF_HOME, or --cache-dir), '
            f'or fetch the repository with `hf download {repo_id} '
            '--local-dir /path/to/folder` and use model_name='
            f"'{LOCAL_DIR_PREFIX}/path/to/folder'.")


def _cached_hf_snapshot(repo_id: str, model_name: str,
                        cache_dir: Optional[str]) -> str:
    """The cached snapshot folder of a hub model; never the network."""
    from huggingface_hub import constants, try_to_load_from_cache
    if repo_id.count('/') != 1 or not all(repo_id.split('/')):
        raise ValueError(f'FrozenCLIP: model_name={model_name!r}; a hub '
                         "model is named 'hf-hub:org/name'.")
    cached = try_to_load_from_cache(repo_id, HF_CONFIG_NAME,
                                    cache_dir=cache_dir)
    if not (isinstance(cached, str) and osp.isfile(cached)):
        raise FileNotFoundError(
            f'FrozenCLIP: model_name={model_name!r}: {HF_CONFIG_NAME} of '
            f'{repo_id} is not in the local Hugging Face cache '
            f'({cache_dir or constants.HF_HUB_CACHE}), and FrozenCLIP never '
            'downloads. ' + _fetch_advice(
                repo_id, (HF_CONFIG_NAME, HF_SAFE_WEIGHTS_NAME)))
    return osp.dirname(cached)


# ---------------------------------------------------------------- weights
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
    """Whether ``path`` is a TorchScript (``torch.jit.save``) archive: a
    zip, as ``torch.save`` files are, with serialised code inside."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any(name.endswith('/constants.pkl') for name in names) and any(
        '/code/' in name for name in names)


def read_clip_file(path: str) -> ClipWeights:
    """Read CLIP weights from a local file: an OpenAI TorchScript archive, a
    ``torch.save`` state dict (OpenAI's or open_clip's keys, maybe under
    'state_dict' or 'module.') or ``.safetensors``. QuickGELU is read, in
    this order, from OpenAI's format (TorchScript, or OpenAI's extra entries
    in a state dict) or a ``quick_gelu`` entry of a ``.safetensors`` file's
    metadata (this project's files write it)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'FrozenCLIP: pretrained file {path} does '
                                'not exist.')
    quick_gelu = None
    if path.endswith('.safetensors'):
        from safetensors import safe_open
        from safetensors.torch import load_file
        state_dict = load_file(path, device='cpu')
        with safe_open(path, framework='pt') as handle:
            flag = (handle.metadata() or {}).get('quick_gelu', '').lower()
        if flag in ('true', 'false'):
            quick_gelu = flag == 'true'
        file_format = 'safetensors'
    elif is_torchscript_archive(path):
        # Only OpenAI released CLIP weights as TorchScript: QuickGELU.
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', FutureWarning)  # deprecated jit
            archive = torch.jit.load(path, map_location='cpu')
        state_dict = dict(archive.state_dict())
        file_format = 'openai-torchscript'
        quick_gelu = True
    else:
        state_dict = read_state_dict(path, 'FrozenCLIP pretrained',
                                     weights_only=True)
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
    """The local file of an open_clip tag if it is cached, else None:
    where open_clip's downloaders would have put it, without network."""
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
        cached = osp.join(cache_dir or osp.expanduser('~/.cache/clip'),
                          osp.basename(url))
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
    return ' or '.join(sources) or "open_clip's pretrained config"


def resolve_pretrained(model_name: str, pretrained: str,
                       cache_dir: Optional[str] = None,
                       allow_download: bool = False) -> ClipWeights:
    """Weights named by ``pretrained``: a local file, or an open_clip tag
    of ``model_name`` found in the local cache.

    Raises:
        FileNotFoundError: neither a file nor a tag; or a tag whose file is
            not cached while ``allow_download`` is False (or HF_HUB_OFFLINE
            is set): the message names the file and says to pass its path.
    """
    if osp.isfile(pretrained):
        return read_clip_file(pretrained)
    pretrained_cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
    if not pretrained_cfg:
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        raise FileNotFoundError(
            f'FrozenCLIP: pretrained={pretrained!r} is neither an existing '
            f'file nor an open_clip pretrained tag of model {model_name!r} ('
            + (f'its tags: {tags}' if tags else 'it has no tags') +
            '). Pass the path of a CLIP checkpoint file.')
    path = _cached_tag_file(pretrained_cfg, cache_dir)
    offline = os.environ.get('HF_HUB_OFFLINE', '0').lower() in ('1', 'true',
                                                                'yes')
    if path is None and allow_download and not offline:
        path = open_clip.download_pretrained(pretrained_cfg,
                                             cache_dir=cache_dir)
    if path is None:
        raise FileNotFoundError(
            f'FrozenCLIP: the weights of model_name={model_name!r} '
            f'pretrained={pretrained!r} are not in the local cache, and '
            'FrozenCLIP does not download' +
            (' (HF_HUB_OFFLINE is set)' if offline and allow_download else
             ' unless allow_download=True') +
            f'. Download {_describe_download(pretrained_cfg)} and pass '
            "pretrained='/path/to/file' (the downloaded file).")
    weights = read_clip_file(path)
    if 'quick_gelu' in pretrained_cfg or weights.quick_gelu is None:
        weights.quick_gelu = bool(pretrained_cfg.get('quick_gelu', False))
    weights.preprocess = {key: pretrained_cfg[key] for key in
                          ('mean', 'std', 'interpolation')
                          if key in pretrained_cfg}
    return weights
