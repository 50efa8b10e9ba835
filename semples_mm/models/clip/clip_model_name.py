"""What a ``FrozenCLIP(model_name=...)`` names, resolved without network.

``model_name`` takes every form open_clip 3.3's ``create_model`` takes, and
one more:

- a registered model config: open_clip's own ('ViT-B-16'; 'ViT-B/16' is read
  as 'ViT-B-16', as open_clip does), this project's
  ('semples-synthetic-tiny') or any added with ``open_clip.add_model_config``.
  Weights come from ``pretrained``.
- ``'local-dir:/path/to/folder'``: a model saved the way open_clip saves one
  (``open_clip.push_to_hf_hub.save_for_hf``): ``open_clip_config.json``
  (``{'model_cfg': ..., 'preprocess_cfg': ...}``) beside its weights
  (``open_clip_model.safetensors`` or ``open_clip_pytorch_model.bin``). The
  weights are the folder's unless ``pretrained`` names others.
- ``'hf-hub:org/name'``: an open_clip model on the Hugging Face hub, read
  only from the local Hugging Face cache. Nothing is ever downloaded: a
  repository that is not cached fails at once, naming the files to fetch.
- the path of an open_clip model-config JSON file (``/path/ViT-X.json``),
  bare (``{'embed_dim': ..., 'vision_cfg': ..., 'text_cfg': ...}``, the
  format of open_clip's ``model_configs``) or wrapped in ``model_cfg`` as in
  ``open_clip_config.json``. It gives the architecture only; weights come
  from ``pretrained``. The file is not registered into open_clip, so its name
  cannot shadow a registered config.

:func:`resolve_model_name` reads the config, and :func:`open_clip_name`
gives the name that open_clip's ``create_model`` and ``get_tokenizer``
build the same architecture and tokenizer from: the name itself, the cached
snapshot folder as ``local-dir:`` for ``hf-hub:`` (so open_clip never asks
the hub), and a temporary ``local-dir:`` holding the config for a JSON file
(open_clip has no form for a bare config file).
"""
import difflib
import json
import os
import os.path as osp
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, Iterator, Optional

import open_clip
from open_clip.constants import (HF_CONFIG_NAME, HF_SAFE_WEIGHTS_NAME,
                                 HF_WEIGHTS_NAME)

from ...utils.paths import resolve_package_path

LOCAL_DIR_PREFIX = 'local-dir:'
HF_HUB_PREFIX = 'hf-hub:'
# Keys open_clip requires of a model config (its registry skips files
# without them).
MODEL_CFG_KEYS = ('embed_dim', 'vision_cfg', 'text_cfg')
# Weight files of a local-dir folder, in open_clip's order of preference
# (open_clip.factory._find_checkpoint_in_dir). Other files are not guessed
# at: a folder with only those fails, and pretrained can name the file.
LOCAL_DIR_WEIGHT_NAMES = (
    HF_SAFE_WEIGHTS_NAME, 'open_clip_pytorch_model.safetensors',
    HF_WEIGHTS_NAME, 'open_clip_pytorch_model.pth', 'model.safetensors',
    'pytorch_model.bin', 'pytorch_model.pth', 'model.pth')
# The weight files open_clip fetches from a hub repository, in its order
# (open_clip.pretrained.download_pretrained_from_hf).
HF_HUB_WEIGHT_NAMES = (HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME)

ACCEPTED_FORMS = (
    "a registered open_clip config name (open_clip.list_models(), e.g. "
    "'ViT-B-16' or this project's 'semples-synthetic-tiny'), "
    "'local-dir:/path/to/folder' (open_clip_config.json and "
    f"{HF_SAFE_WEIGHTS_NAME} or {HF_WEIGHTS_NAME}, as open_clip saves a "
    "model), 'hf-hub:org/name' (already in the local Hugging Face cache) or "
    "the path of a model-config JSON file ('/path/ViT-X.json')")


@dataclass
class ClipModelSource:
    """A resolved ``model_name``.

    Attributes:
        model_name: the name as given.
        kind: 'registered', 'local-dir', 'hf-hub' or 'config-file'.
        model_cfg: open_clip model config (embed_dim, vision_cfg, text_cfg,
            quick_gelu, ...), a copy.
        preprocess_cfg: image preprocessing saved with the model (mean, std,
            interpolation, ...); empty where the name has none.
        tag_model_name: the name open_clip's pretrained tags are listed
            under ('ViT-B-16' for 'ViT-B/16'); the name itself for the other
            forms, which have no tags.
        folder: local-dir folder or hf-hub cached snapshot folder.
        config_file: the file the config was read from (None: registered).
        cache_dir: the Hugging Face cache an hf-hub name was read from
            (None: the default one).
    """
    model_name: str
    kind: str
    model_cfg: Dict
    preprocess_cfg: Dict = field(default_factory=dict)
    tag_model_name: str = ''
    folder: Optional[str] = None
    config_file: Optional[str] = None
    cache_dir: Optional[str] = None

    def bundled_weights(self) -> Optional[str]:
        """The weight file that comes with the name.

        None for a registered name or a config file (they name an
        architecture only; weights come from ``pretrained``).

        Raises:
            FileNotFoundError: a local-dir folder or a cached hub repository
                without its weights; the message names what to add.
        """
        if self.kind == 'local-dir':
            return _local_dir_weights(self.folder, self.model_name)
        if self.kind == 'hf-hub':
            return _hf_hub_weights(self.model_name, self.cache_dir)
        return None


def resolve_model_name(model_name: str,
                       cache_dir: Optional[str] = None) -> ClipModelSource:
    """Read the architecture ``model_name`` names; see the module doc.

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
    if model_name.startswith(LOCAL_DIR_PREFIX):
        return _resolve_local_dir(model_name)
    if model_name.startswith(HF_HUB_PREFIX):
        return _resolve_hf_hub(model_name, cache_dir)
    if model_name.endswith('.json'):
        return _resolve_config_file(model_name)
    registered = model_name.replace('/', '-')  # as open_clip's create_model
    model_cfg = open_clip.get_model_config(registered)
    if model_cfg is None:
        raise ValueError(_unknown_name_message(model_name))
    return ClipModelSource(model_name, 'registered', model_cfg,
                           tag_model_name=registered)


@contextmanager
def open_clip_name(source: ClipModelSource) -> Iterator[str]:
    """A name open_clip's ``create_model`` / ``get_tokenizer`` build
    ``source``'s architecture and tokenizer from, valid inside the block.

    Only the config is read from it: FrozenCLIP loads the weights itself
    (``create_model(..., load_weights=False)``).
    """
    if source.kind == 'registered':
        yield source.tag_model_name
    elif source.kind in ('local-dir', 'hf-hub'):
        # A cached hub snapshot is a folder in open_clip's saved format; as
        # local-dir, open_clip reads it without asking the hub.
        yield LOCAL_DIR_PREFIX + source.folder
    else:
        with tempfile.TemporaryDirectory(prefix='semples_clip_cfg_') as tmp:
            with open(osp.join(tmp, HF_CONFIG_NAME), 'w') as handle:
                json.dump(dict(model_cfg=source.model_cfg,
                               preprocess_cfg=source.preprocess_cfg), handle)
            yield LOCAL_DIR_PREFIX + tmp


# ------------------------------------------------------------------ names
def _unknown_name_message(model_name: str) -> str:
    """Short: the closest registered names and the accepted forms."""
    known = open_clip.list_models()
    by_lower = {name.lower(): name for name in known}
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


def _saved_config(path: str, model_name: str) -> tuple:
    """(model_cfg, preprocess_cfg) of an open_clip_config.json."""
    content = _read_json(path, model_name)
    if 'model_cfg' not in content:
        raise ValueError(
            f'FrozenCLIP: model_name={model_name!r}: {path} has no '
            f"'model_cfg' (keys {sorted(content)}); open_clip saves a model "
            "as {'model_cfg': {...}, 'preprocess_cfg': {...}}. For a bare "
            f"model config, pass the file itself: model_name='{path}'.")
    return (_check_model_cfg(content['model_cfg'], path, model_name),
            dict(content.get('preprocess_cfg') or {}))


def _resolve_local_dir(model_name: str) -> ClipModelSource:
    folder = resolve_package_path(model_name[len(LOCAL_DIR_PREFIX):])
    if not folder:
        raise ValueError(f"FrozenCLIP: model_name={model_name!r} names no "
                         "folder; use 'local-dir:/path/to/folder'.")
    if not osp.isdir(folder):
        raise FileNotFoundError(
            f'FrozenCLIP: model_name={model_name!r}: folder {folder} does '
            'not exist.')
    config_file = osp.join(folder, HF_CONFIG_NAME)
    if not osp.isfile(config_file):
        raise FileNotFoundError(
            f'FrozenCLIP: model_name={model_name!r}: {config_file} does not '
            f'exist; a local-dir folder holds {HF_CONFIG_NAME} and the '
            f'weights ({HF_SAFE_WEIGHTS_NAME} or {HF_WEIGHTS_NAME}), as '
            'open_clip saves a model.')
    model_cfg, preprocess_cfg = _saved_config(config_file, model_name)
    return ClipModelSource(model_name, 'local-dir', model_cfg, preprocess_cfg,
                           tag_model_name=model_name, folder=folder,
                           config_file=config_file)


def _local_dir_weights(folder: str, model_name: str) -> str:
    for name in LOCAL_DIR_WEIGHT_NAMES:
        path = osp.join(folder, name)
        if osp.isfile(path):
            return path
    others = sorted(name for name in os.listdir(folder)
                    if name.endswith(('.safetensors', '.bin', '.pth', '.pt')))
    raise FileNotFoundError(
        f'FrozenCLIP: model_name={model_name!r}: folder {folder} holds no '
        f'CLIP weights named {HF_SAFE_WEIGHTS_NAME} or {HF_WEIGHTS_NAME}'
        + (f' (it has {others}: pass the right one as pretrained=)'
           if others else '') +
        '. Save them there, or pass pretrained=/path/to/weights.')


# ----------------------------------------------------------------- hf-hub
def _hf_cache_file(repo_id: str, filename: str,
                   cache_dir: Optional[str]) -> Optional[str]:
    """The cached file of a hub repository, or None; never the network."""
    from huggingface_hub import try_to_load_from_cache
    cached = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir)
    return cached if isinstance(cached, str) and osp.isfile(cached) else None


def _hf_cache_dir(cache_dir: Optional[str]) -> str:
    if cache_dir:
        return cache_dir
    from huggingface_hub import constants
    return constants.HF_HUB_CACHE


def _fetch_advice(repo_id: str, files, cache_dir: Optional[str]) -> str:
    cache = f' --cache-dir {cache_dir}' if cache_dir else ''
    return (f'On a machine with network, fill the cache with `hf download '
            f'{repo_id} {" ".join(files)}{cache}` (same HF_HOME), or fetch '
            f'the repository with `hf download {repo_id} --local-dir '
            f'/path/to/folder` and use model_name='
            f"'{LOCAL_DIR_PREFIX}/path/to/folder'.")


def _resolve_hf_hub(model_name: str,
                    cache_dir: Optional[str]) -> ClipModelSource:
    repo_id = model_name[len(HF_HUB_PREFIX):]
    if repo_id.count('/') != 1 or not all(repo_id.split('/')):
        raise ValueError(f'FrozenCLIP: model_name={model_name!r}; a hub '
                         "model is named 'hf-hub:org/name'.")
    config_file = _hf_cache_file(repo_id, HF_CONFIG_NAME, cache_dir)
    if config_file is None:
        raise FileNotFoundError(
            f'FrozenCLIP: model_name={model_name!r}: {HF_CONFIG_NAME} of '
            f'{repo_id} is not in the local Hugging Face cache '
            f'({_hf_cache_dir(cache_dir)}), and FrozenCLIP never downloads. '
            + _fetch_advice(repo_id, (HF_CONFIG_NAME, HF_SAFE_WEIGHTS_NAME),
                            cache_dir))
    model_cfg, preprocess_cfg = _saved_config(config_file, model_name)
    return ClipModelSource(model_name, 'hf-hub', model_cfg, preprocess_cfg,
                           tag_model_name=model_name,
                           folder=osp.dirname(config_file),
                           config_file=config_file, cache_dir=cache_dir)


def _hf_hub_weights(model_name: str, cache_dir: Optional[str]) -> str:
    repo_id = model_name[len(HF_HUB_PREFIX):]
    for name in HF_HUB_WEIGHT_NAMES:
        path = _hf_cache_file(repo_id, name, cache_dir)
        if path is not None:
            return path
    raise FileNotFoundError(
        f'FrozenCLIP: model_name={model_name!r}: the config of {repo_id} is '
        'cached but none of its weights '
        f'({" or ".join(HF_HUB_WEIGHT_NAMES)}) are, and FrozenCLIP never '
        'downloads. ' + _fetch_advice(repo_id, (HF_SAFE_WEIGHTS_NAME, ),
                                      cache_dir))


# ------------------------------------------------------------- JSON file
def _resolve_config_file(model_name: str) -> ClipModelSource:
    path = resolve_package_path(model_name)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'FrozenCLIP: model_name={model_name!r} names a model-config '
            f'JSON file, but {path} does not exist.')
    content = _read_json(path, model_name)
    if 'model_cfg' in content:
        model_cfg = content['model_cfg']
        preprocess_cfg = dict(content.get('preprocess_cfg') or {})
    else:
        model_cfg, preprocess_cfg = content, {}
    _check_model_cfg(model_cfg, path, model_name)
    return ClipModelSource(model_name, 'config-file', model_cfg,
                           preprocess_cfg, tag_model_name=model_name,
                           config_file=path)
