"""Train a config with mmengine's Runner."""
import copy
import logging
from typing import Optional, Union

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import Runner

from ..utils.launch import (enable_amp, finish_distributed,
                            init_cpu_distributed, set_work_dir)


def train(config: Union[str, Config], work_dir: Optional[str] = None,
          resume: bool = False, amp: bool = False, launcher: str = 'none',
          cfg_options: Optional[dict] = None) -> Runner:
    """Train ``config`` as mmsegmentation's ``tools/train.py`` does.

    Args:
        config (str | Config): config file or loaded config (copied).
        work_dir (str, optional): wins over the config's ``work_dir``, which
            wins over ``./work_dirs/<config name>``.
        resume (bool): continue from the latest checkpoint in the work dir.
        amp (bool): mixed precision (fp16 on GPU, bf16 on CPU).
        launcher (str): 'none', 'pytorch', 'slurm' or 'mpi'.
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
    if amp:
        amp_type = enable_amp(cfg)
        print_log(f'AMP training is enabled ({amp_type}: '
                  f"{'fp16' if amp_type == 'AmpOptimWrapper' else 'bf16'} "
                  'autocast)', logger='current', level=logging.INFO)
    cfg.resume = resume
    init_cpu_distributed(cfg, launcher)
    runner = Runner.from_cfg(cfg)
    runner.train()
    finish_distributed()
    return runner
