"""Test a checkpoint on a config's test dataloader."""
import copy
import numbers
import os.path as osp
from typing import Union

from mmengine.config import Config
from mmengine.runner import Runner

from ..utils.checkpoints import load_model_weights
from ..utils.launch import enable_tta, init_cpu_distributed
from ..utils.models import unwrap_model


def build_test_runner(cfg: Config, checkpoint: str,
                      tta: bool = False) -> Runner:
    """A Runner of ``cfg`` (changed in place) whose model holds
    ``checkpoint``, checked to have every key of the model with its shape
    (with ``tta``: of the model inside the config's ``tta_model``)."""
    cfg.load_from = None  # loaded below, every key checked
    if tta:
        enable_tta(cfg, cfg.filename)
    runner = Runner.from_cfg(cfg)
    model = unwrap_model(runner.model)
    load_model_weights(model.module if tta else model, checkpoint)
    return runner


def test_checkpoint(config: Union[str, Config], checkpoint: str,
                    work_dir: str, tta: bool = False,
                    launcher: str = 'none') -> dict:
    """Evaluate ``checkpoint`` on the config's ``test_dataloader``; the
    checkpoint must hold every key of the config's model, with its shapes.

    Args:
        config (str | Config): config file or loaded config (copied).
        checkpoint (str): weights to test.
        work_dir (str): where the runner logs.
        tta (bool): the config's multi-scale + flip ``tta_model``.
        launcher (str): 'none', 'pytorch' or 'slurm' (the metrics of every
            rank's shard, gathered).

    Returns:
        dict: the scalar metrics plus ``num_images``, ``split``, ``tta`` and
        ``checkpoint``.
    """
    cfg = copy.deepcopy(config) if isinstance(config, Config) else \
        Config.fromfile(config)
    cfg.work_dir = work_dir
    cfg.launcher = launcher
    init_cpu_distributed(cfg, launcher)
    runner = build_test_runner(cfg, checkpoint, tta)
    metrics = runner.test()
    dataset = runner.test_dataloader.dataset
    # scalar metrics (numpy or torch scalars included); tables are left out
    result = {key: float(value) for key, value in metrics.items()
              if isinstance(value, numbers.Real) or getattr(
                  value, 'ndim', None) == 0}
    result.update(num_images=len(dataset), tta=bool(tta),
                  split=osp.splitext(osp.basename(
                      dataset.ann_file or 'images'))[0],
                  checkpoint=osp.abspath(checkpoint))
    return result
