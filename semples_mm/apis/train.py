"""Train a config with mmengine's Runner."""
import copy
import logging
from contextlib import nullcontext
from typing import Optional, Union

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import Runner

from ..datasets.synthetic.world import generate_config_worlds
from ..pseudo_labels.settings import export_settings
from ..utils.checkpoints import ATOMIC_BACKEND_ARGS, resume_checkpoint
from ..utils.launch import (enable_amp, init_cpu_distributed, is_rank_zero,
                            set_work_dir)
from ..utils.work_dir_lock import WorkDirLock


def train(config: Union[str, Config], work_dir: Optional[str] = None,
          resume: bool = False, amp: bool = False, launcher: str = 'none',
          cfg_options: Optional[dict] = None) -> Runner:
    """Train ``config`` as mmsegmentation's ``tools/train.py`` does, one
    run per work dir (a second one stops at once, naming the first),
    checkpoints written atomically, and a resume that starts from the
    newest checkpoint that loads (a broken newer one is named and skipped).
    The synthetic world of a synthetic config is generated first.

    Args:
        config (str | Config): config file or loaded config (copied).
        work_dir (str, optional): wins over the config's ``work_dir``, which
            wins over ``./work_dirs/<config name>``.
        resume (bool): continue from the latest loadable checkpoint in the
            work dir (or the config's ``load_from``).
        amp (bool): mixed precision (fp16 on GPU, bf16 on CPU).
        launcher (str): 'none', 'pytorch', 'slurm' or 'mpi'. The process
            group (started here unless it exists) stays up for the caller's
            next steps; the tools end it (``finish_distributed``).
        cfg_options (dict, optional): overrides merged into the config.

    Returns:
        Runner: the runner, after training.
    """
    cfg = copy.deepcopy(config) if isinstance(config, Config) else \
        Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    set_work_dir(cfg, work_dir, cfg.filename or 'config')
    if cfg.get('pseudo_label_cfg') is not None:
        # a typo in the export settings fails now, not after the training
        export_settings(cfg)
    if amp:
        amp_type = enable_amp(cfg)
        print_log(f'AMP training is enabled ({amp_type}: '
                  f"{'fp16' if amp_type == 'AmpOptimWrapper' else 'bf16'} "
                  'autocast)', logger='current', level=logging.INFO)
    checkpoint_hook = (cfg.get('default_hooks') or {}).get('checkpoint')
    if checkpoint_hook is not None and '://' not in cfg.work_dir:
        checkpoint_hook.setdefault('backend_args', ATOMIC_BACKEND_ARGS)
    with WorkDirLock(cfg.work_dir, 'train') if is_rank_zero() else \
            nullcontext():
        if resume and not cfg.get('load_from'):
            cfg.load_from = resume_checkpoint(cfg.work_dir)
            resume = cfg.load_from is not None  # else a fresh start
        cfg.resume = resume
        init_cpu_distributed(cfg, launcher)
        generate_config_worlds(cfg)
        runner = Runner.from_cfg(cfg)
        runner.train()
    return runner
