"""Run SemPLeS end to end: training, pseudo masks, segmentors and their mIoU.

(synthetic world ->) SemPLeS -> pseudo masks after cam, match and refine ->
each segmentor config (DeepLabV2 by default) on the SemPLeS masks (and,
with --ground-truth-bound, on the ground truth) -> val mIoU, with a results
table and ``<work-dir>/summary.json``.

    python tools/run_experiment.py [CONFIG] --work-dir W [--seed S]
        [--seg-config C [C ...]] [--ground-truth-bound] [--quick]
        [--score-split train] [--tta]
    python tools/run_experiment.py [CONFIG] --work-dir W --seeds 0 1 2
    torchrun --nproc_per_node N tools/run_experiment.py [CONFIG] --work-dir W \
        --launcher pytorch

CONFIG defaults to configs/semples/synthetic.py. Rerunning the command
skips finished steps whose inputs did not change (log lines '[experiment]
step X: skipped'), reruns those whose inputs changed (and the steps after
them; --no-rerun stops instead), and continues a killed run: training from
its last loadable checkpoint, an export from its phase-end weights. One
runner per work dir at a time. With ``--seeds`` every seed runs
in ``W/seed<S>`` and the mean table goes to ``W/seeds_summary.json``.

Each segmentor config ``<stem>.py`` trains in ``W/<stem>`` (on the ground
truth: ``W/<stem>_gt``). One on the synthetic world (its train dataset has
``synthetic_world``, e.g. configs/deeplabv2/deeplabv2_tiny_synthetic_pseudo.py)
takes the SemPLeS config's data and classes, whatever the dataset; one on
a real dataset is used as it is, except for the masks it trains on.
"""
import argparse
import os.path as osp

TOOLS_DIR = osp.dirname(osp.abspath(__file__))
DEFAULT_CONFIG = osp.join(TOOLS_DIR, '..', 'configs', 'semples',
                          'synthetic.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', default=DEFAULT_CONFIG,
                        help='SemPLeS config (default: '
                        'configs/semples/synthetic.py)')
    parser.add_argument('--work-dir', required=True,
                        help='output folder; rerun with the same folder to '
                        'continue')
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument('--seed', type=int, default=0,
                       help='training seed and synthetic-world seed')
    seeds.add_argument('--seeds', type=int, nargs='+',
                       help='run these seeds in <work-dir>/seed<S> and '
                       'print their mean')
    parser.add_argument('--seg-config', '--deeplab-config', nargs='+',
                        dest='seg_config', metavar='SEG_CONFIG',
                        help='mmseg segmentor config(s) trained on the '
                        'pseudo masks and tested in turn, each in '
                        '<work-dir>/<config file stem>; one on the synthetic '
                        "world takes the SemPLeS config's data and classes, "
                        'one on a real dataset is used as it is (default: '
                        'configs/deeplabv2/deeplabv2_tiny_synthetic_pseudo.'
                        'py; --deeplab-config is the old name)')
    parser.add_argument('--ground-truth-bound', action='store_true',
                        help='also train each segmentor on the training '
                        "list's ground-truth masks (the fully supervised "
                        'upper bound), in <work-dir>/<stem>_gt')
    parser.add_argument('--data-root',
                        help='synthetic-world folder (default: <work-dir>/'
                        'data/synthetic_world_seed<S>)')
    parser.add_argument('--score-split',
                        help='image list to export and score the pseudo '
                        'masks on instead of the training list (e.g. '
                        "'train' for VOC's 1,464 images); the training list's "
                        'masks are then written in an extra step')
    parser.add_argument('--tta', action='store_true',
                        help='multi-scale + flip test of the segmentors '
                        "(their config's tta_pipeline)")
    parser.add_argument('--num-threads', type=int,
                        help='torch CPU threads (torch.set_num_threads); 1 '
                        'is much faster when other jobs share the cores')
    parser.add_argument('--quick', action='store_true',
                        help='tiny world and iterations (tests, smoke runs)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'],
                        default='none', help='run every step in the '
                        'processes of a torchrun or srun launch')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument('--no-rerun', action='store_true',
                        help='stop, naming what changed, instead of '
                        'rerunning a finished step whose inputs (config, '
                        'weights, masks) changed')
    args = parser.parse_args(argv)
    if args.seeds is not None and args.data_root is not None:
        parser.error('--data-root names one world; it cannot serve '
                     '--seeds (each seed has its own world)')
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.num_threads is not None:
        import torch
        torch.set_num_threads(args.num_threads)
    from semples_experiments.runner import run_experiment, run_seeds
    from semples_mm.utils.launch import finish_distributed
    kwargs = dict(seg_configs=args.seg_config,
                  ground_truth_bound=args.ground_truth_bound, quick=args.quick,
                  score_split=args.score_split, tta=args.tta,
                  no_rerun=args.no_rerun, launcher=args.launcher)
    if args.seeds is not None:
        result = run_seeds(args.config, args.work_dir, args.seeds, **kwargs)
    else:
        result = run_experiment(args.config, args.work_dir, seed=args.seed,
                              data_root=args.data_root, **kwargs)
    finish_distributed()
    return result


if __name__ == '__main__':
    main()
