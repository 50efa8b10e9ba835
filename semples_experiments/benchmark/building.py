"""Build a config's model and optimizers the way mmengine's Runner does,
without data, hooks or a work folder."""
import copy
import logging
import os.path as osp
from typing import List, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.logging import MessageHub, MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope


def _pretrained_init_cfgs(node, path='model'):
    """Yield (path, parent, key) of every init_cfg of type 'Pretrained'."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'init_cfg' and _is_pretrained(value):
                yield f'{path}.{key}', node, key
            else:
                yield from _pretrained_init_cfgs(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _pretrained_init_cfgs(value, f'{path}[{i}]')


def _is_pretrained(init_cfg) -> bool:
    items = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    return any(isinstance(item, dict) and item.get('type') == 'Pretrained'
               for item in items)


def make_random_init(cfg: Config) -> List[str]:
    """Drop every weight file from the model config (in place).

    Removes each ``init_cfg`` of type 'Pretrained' (backbone ImageNet
    weights), sets ``model.clip.pretrained=None`` (random CLIP) and
    ``model.pretrained=None``. Timings do not depend on the weights, and a
    paper-scale config then builds with nothing downloaded or on disk.

    Returns:
        list[str]: the config keys that were changed, for the report.
    """
    changed = []
    for path, parent, key in list(_pretrained_init_cfgs(cfg.model)):
        del parent[key]
        changed.append(path)
    clip = cfg.model.get('clip')
    if clip is not None and clip.get('pretrained') is not None:
        clip['pretrained'] = None
        changed.append('model.clip.pretrained')
    if cfg.model.get('pretrained') is not None:
        cfg.model['pretrained'] = None
        changed.append('model.pretrained')
    return changed


def check_weight_files(cfg: Config):
    """Fail early, naming the key, when a 'Pretrained' init file is missing.

    Raises:
        FileNotFoundError: with the config key and the way out
            (``--random-init``).
    """
    for path, parent, key in _pretrained_init_cfgs(cfg.model):
        items = parent[key]
        items = items if isinstance(items, (list, tuple)) else [items]
        for item in items:
            checkpoint = item.get('checkpoint') if isinstance(item,
                                                              dict) else None
            if (checkpoint and '://' not in checkpoint
                    and not osp.exists(checkpoint)):
                raise FileNotFoundError(
                    f'benchmark: {path} names the weight file {checkpoint!r}, '
                    'which does not exist. Set the path, or pass '
                    '--random-init (timings do not depend on the weights).')


def load_config(path: str,
                cfg_options: Optional[dict] = None,
                random_init: bool = False,
                amp: bool = False,
                device: str = 'cpu') -> Tuple[Config, List[str]]:
    """Load a config for benchmarking.

    Args:
        path (str): config file.
        cfg_options (dict, optional): ``--cfg-options`` overrides, merged
            first.
        random_init (bool): drop the weight files (:func:`make_random_init`).
        amp (bool): mixed precision as ``tools/train.py --amp``: every
            optimizer wrapper becomes an ``AmpOptimWrapper`` (fp16) on
            CUDA, a ``BF16OptimWrapper`` on CPU; and the export infers
            under bf16 autocast (``pseudo_label_cfg.amp``).
        device (str): 'cpu' or 'cuda', the device the steps will run on.

    Returns:
        tuple: the config and the keys ``random_init`` changed.
    """
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    changed = make_random_init(cfg) if random_init else []
    check_weight_files(cfg)
    if amp:
        from semples_mm.utils.launch import enable_amp
        enable_amp(cfg, cuda=device == 'cuda')
        cfg.pseudo_label_cfg = dict(cfg.get('pseudo_label_cfg') or {},
                                    amp=True)
    return cfg, changed


def _registries_ready():
    """Register semples_mm and mmseg into mmseg's registries."""
    import semples_mm  # noqa: F401
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)


def build_model(cfg: Config, device: str) -> torch.nn.Module:
    """The config's model, weights initialised as the Runner does
    (``init_weights``), on ``device``, in train mode.

    Args:
        cfg (Config): a loaded config; not modified.
        device (str): 'cpu' or 'cuda'.
    """
    _registries_ready()
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope',
                                                      'mmseg')):
        model = MODELS.build(copy.deepcopy(cfg.model))
        # init_weights logs every parameter at INFO; keep the output short.
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)
        try:
            model.init_weights()
        finally:
            logger.setLevel(level)
    model.to(device)
    model.train()
    return model


def build_optim(cfg: Config, model: torch.nn.Module):
    """A fresh optimizer wrapper of the config for ``model`` (an
    ``OptimWrapperDict`` with 'cam' and 'prompt' for SemPLeS configs)."""
    _registries_ready()
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope',
                                                      'mmseg')):
        return build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))


def enter_phase(model: torch.nn.Module, phase: str) -> None:
    """Make ``model.train_step`` train ``phase`` outside a Runner: the
    iteration it reads (mmengine's MessageHub, as the Runner sets it) is the
    phase's last, so no phase start (snapshot, restore, fresh optimizer)
    runs inside a timing."""
    model.set_phase(phase)
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', model.schedule[phase].end - 1)
    hub.update_info('max_iters', model.schedule.total_iters)


def snapshot_state(model: torch.nn.Module) -> dict:
    """A CPU copy of ``model.state_dict()`` (extra states included), to
    restart every benchmark run from the same weights."""
    state = {}
    for key, value in model.state_dict().items():
        state[key] = (value.detach().to('cpu', copy=True)
                      if isinstance(value, torch.Tensor) else
                      copy.deepcopy(value))
    return state
