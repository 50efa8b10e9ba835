"""Evaluate a checkpoint with mmengine's Runner (mmsegmentation's command line)."""
import argparse
import os

from mmengine.config import Config, DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Evaluate a checkpoint of a config on its test '
        'dataloader (every key of the model must be in the checkpoint).')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='if specified, the evaluation metric results will be dumped '
        'into the directory as json')
    parser.add_argument(
        '--out', type=str,
        help='the directory to save the output prediction masks')
    parser.add_argument('--show', action='store_true',
                        help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved (inside work-dir '
        'unless absolute)')
    parser.add_argument('--wait-time', type=float, default=2,
                        help='the interval of show (s)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, key=value pairs')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    parser.add_argument('--tta', action='store_true',
                        help='test time augmentation (multi-scale + flip)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg, args):
    """Switch on mmseg's SegVisualizationHook for --show / --show-dir."""
    default_hooks = cfg.default_hooks
    if 'visualization' not in default_hooks:
        raise RuntimeError(
            f'{args.config}: --show/--show-dir need '
            "default_hooks.visualization=dict(type='SegVisualizationHook')")
    visualization_hook = default_hooks['visualization']
    visualization_hook['draw'] = True
    if args.show:
        visualization_hook['show'] = True
        visualization_hook['wait_time'] = args.wait_time
    if args.show_dir:
        visualizer = cfg.visualizer
        visualizer['save_dir'] = args.show_dir
    return cfg


def main(argv=None):
    args = parse_args(argv)
    import semples_mm  # noqa: F401  (registers our components)
    from semples_mm.apis.test import build_test_runner
    from semples_mm.utils.launch import (finish_distributed,
                                         init_cpu_distributed, set_work_dir)

    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    set_work_dir(cfg, args.work_dir, args.config)
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.out is not None:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    init_cpu_distributed(cfg, args.launcher)
    build_test_runner(cfg, args.checkpoint, tta=args.tta).test()
    finish_distributed()


if __name__ == '__main__':
    main()
