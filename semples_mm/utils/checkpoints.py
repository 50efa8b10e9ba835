"""Checkpoints that are whole or refused: atomic writes, a resume that
skips broken files, and loading that names what does not fit."""
import glob
import logging
import os.path as osp
import re
from typing import Dict, Iterable, List, Optional, Tuple

import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import print_log

from .atomic_file import atomic_write
from .read_back import DamagedFile, read_back

#: ``backend_args`` that make mmengine write checkpoints atomically, e.g.
#: ``default_hooks.checkpoint.backend_args``.
ATOMIC_BACKEND_ARGS = dict(backend='atomic_local')


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose writes are atomic: into a
    temporary file of the target folder, flushed to disk, then renamed over
    the target, so a killed writer leaves the old file or none, never a
    truncated one (a kill during a checkpoint write used to leave a 0-byte
    ``iter_N.pth`` that every rerun then failed on)."""

    def put(self, obj: bytes, filepath) -> None:
        with atomic_write(str(filepath), 'wb', fsync=True) as file:
            file.write(obj)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        self.put(obj.encode(encoding), filepath)


#: What to do about a damaged checkpoint, unless the reader knows better.
CHECKPOINT_REMEDY = ('A kill or a full disk during its writing, or a copy '
                     'that did not finish, leaves such a file: write it '
                     'again (rerun the training that wrote it; a resume '
                     'skips a broken iteration checkpoint), or give another '
                     'checkpoint.')


def _load_checkpoint(path: str, mmap: bool = False):
    return torch.load(path, map_location='cpu', weights_only=False,
                      mmap=mmap)


def checkpoint_problem(path: str) -> Optional[str]:
    """Why the checkpoint file cannot be loaded, or None if it loads.

    Cheap: torch maps the file instead of reading the tensors, so a whole
    archive is checked for its structure and metadata only.
    """
    try:
        read_back(path, lambda p: _load_checkpoint(p, mmap=True), '')
    except DamagedFile as error:
        return error.why
    return None


def checkpoint_iteration(path: str) -> Optional[int]:
    """N of an ``iter_<N>.pth`` file, else None."""
    match = re.fullmatch(r'iter_(\d+)\.pth', osp.basename(path))
    return int(match.group(1)) if match else None


def iteration_checkpoints(work_dir: str) -> List[str]:
    """``<work_dir>/iter_<N>.pth`` files, the latest first."""
    paths = glob.glob(osp.join(work_dir, 'iter_*.pth'))
    numbered = [(checkpoint_iteration(p), p) for p in paths
                if checkpoint_iteration(p) is not None]
    return [p for _, p in sorted(numbered, reverse=True)]


def latest_loadable_checkpoint(work_dir: str
                               ) -> Tuple[Optional[str], List[str]]:
    """The newest ``iter_<N>.pth`` of ``work_dir`` that loads, and the newer
    ones that do not (with why), for a resume."""
    broken = []
    for path in iteration_checkpoints(work_dir):
        problem = checkpoint_problem(path)
        if problem is None:
            return path, broken
        broken.append(f'{path} ({problem})')
    return None, broken


def resume_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint a resume in ``work_dir`` should start from, warning
    when the latest is broken and an earlier one is used instead."""
    path, broken = latest_loadable_checkpoint(work_dir)
    if broken:
        print_log(
            f'resume: skipping broken checkpoint(s) {broken}; resuming from '
            f'{path}' if path else f'resume: every checkpoint of {work_dir} '
            f'is broken ({broken}); starting from scratch',
            logger='current', level=logging.WARNING)
    return path




def load_model_weights(model: torch.nn.Module, path: str,
                       required: Optional[Iterable[str]] = None) -> None:
    """Load the weights of checkpoint ``path`` into ``model``.

    Fails, naming the file and the keys, when a key of the model that
    ``required`` covers (name prefixes such as 'backbone.'; None: every
    key) is missing from the checkpoint or has another shape, e.g. a
    DeepLabV2 checkpoint given to a CAM model. Keys of the checkpoint the
    model lacks only warn.
    """
    problem = checkpoint_problem(path)
    if problem is not None:
        raise ValueError(f'cannot load the checkpoint {path}: {problem}')
    state = read_state_dict(path)
    own = model.state_dict()
    wanted = [k for k in own if required is None or any(
        k.startswith(prefix) for prefix in required)]
    missing = [k for k in wanted if k not in state]
    shapes = [f'{k} {tuple(state[k].shape)} in the file, '
              f'{tuple(own[k].shape)} in the model' for k in wanted
              if k in state and torch.is_tensor(own[k]) and
              torch.is_tensor(state[k]) and state[k].shape != own[k].shape]
    if missing or shapes:
        raise ValueError(
            f'the checkpoint {path} does not fit the {type(model).__name__} '
            f'of the config: {len(missing)} of its keys are missing (e.g. '
            f'{missing[:5]}) and {len(shapes)} have another shape (e.g. '
            f'{shapes[:3]}). Is it a checkpoint of this config\'s model?')
    unexpected = [k for k in state if k not in own]
    if unexpected:
        print_log(f'{path}: {len(unexpected)} keys the model does not have '
                  f'were ignored, e.g. {unexpected[:5]}', logger='current',
                  level=logging.WARNING)
    model.load_state_dict(state, strict=False)


def read_state_dict(source, what: str = 'checkpoint',
                    weights_only: bool = False,
                    remedy: str = CHECKPOINT_REMEDY
                    ) -> Dict[str, torch.Tensor]:
    """The weights of a checkpoint, whoever wrote it: the one reader of
    every weight file the project reads (CLIP, WeakTr, DeiT, mmengine and
    the phase-end CAM networks).

    Args:
        source (str | dict): a file, or an object ``torch.load`` gave.
        what (str): what the file is for, for the messages.
        weights_only (bool): ``torch.load``'s (True for files from
            elsewhere; mmengine checkpoints hold more than tensors).
        remedy (str): what to do about a file that does not load.

    Returns:
        dict: name -> tensor: an mmengine checkpoint's ``state_dict``,
        WeakTr's and DeiT's ``model``, or the object itself; the ``module.``
        that DDP-wrapped saving leaves removed from every key, as mmengine's
        loaders do.

    Raises:
        DamagedFile: naming the file, when it does not load.
        ValueError: naming the file, when it holds no state dict.
    """
    name = source if isinstance(source, str) else f'the {what}'
    checkpoint = source
    if isinstance(source, str):
        checkpoint = read_back(
            source, lambda path: torch.load(
                path, map_location='cpu', weights_only=weights_only),
            f'It was read as the {what}. {remedy}')
    if isinstance(checkpoint, dict):
        for key in ('state_dict', 'model'):
            if isinstance(checkpoint.get(key), dict):
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, dict) or not any(
            isinstance(value, torch.Tensor) for value in checkpoint.values()):
        raise ValueError(
            f'{what}: {name} holds a {type(checkpoint).__name__} without '
            "tensors, not a state dict (name -> tensor, maybe under "
            "'state_dict' or 'model').")
    return {key[len('module.'):] if key.startswith('module.') else key: value
            for key, value in checkpoint.items()}
