"""Train a semples-mm (or any mmseg) config with mmengine's Runner.

Same command line as mmsegmentation's ``tools/train.py``.
"""
import argparse
import os

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train a config with mmengine\'s Runner (one run per work '
        'dir; atomic checkpoints; --resume continues from the newest that '
        'loads).')
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
    from semples_mm.apis import train
    from semples_mm.utils.launch import finish_distributed
    runner = train(args.config, work_dir=args.work_dir, resume=args.resume,
                   amp=args.amp, launcher=args.launcher,
                   cfg_options=args.cfg_options)
    finish_distributed()
    return runner


if __name__ == '__main__':
    main()
