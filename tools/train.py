"""Train a semples-mm (or any mmseg) config with mmengine's Runner.

Same command line as mmsegmentation's ``tools/train.py``.
"""
import argparse
import logging
import os

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', action='store_true', default=False,
        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument(
        '--amp', action='store_true', default=False,
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, key=value pairs '
        '(e.g. train_cfg.max_iters=100)')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    # Importing registers semples_mm into mmseg's registries even for configs
    # that forget custom_imports.
    import semples_mm  # noqa: F401
    from semples_mm.utils.launch import (enable_amp, finish_distributed,
                                         init_cpu_distributed, set_work_dir)

    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    set_work_dir(cfg, args.work_dir, args.config)
    if args.amp:
        amp_type = enable_amp(cfg)
        print_log(f'AMP training is enabled ({amp_type}: '
                  f"{'fp16' if amp_type == 'AmpOptimWrapper' else 'bf16'} "
                  'autocast)', logger='current', level=logging.INFO)
    cfg.resume = args.resume
    init_cpu_distributed(cfg, args.launcher)

    runner = Runner.from_cfg(cfg)
    runner.train()
    finish_distributed()


if __name__ == '__main__':
    main()
