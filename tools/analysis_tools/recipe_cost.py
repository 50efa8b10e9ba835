"""What a whole recipe costs, from tools/benchmark.py figures.

    python tools/analysis_tools/recipe_cost.py CONFIG \\
        --figures FIGURES.json [...] [--authors-inference FIGURES.json ...] \\
        --train-images 10582 --selection-images 1464 --export-images 10582 \\
        [--peak-tflops 989.4] [--utilisation 0.35 [0.05 ...]]

Per part of the recipe (every training phase, the model selections, the
pseudo-mask export): the steps or images, the counted GFLOP per step or
image of ours and of the authors' program, and the total; then the hours
on one accelerator of ``--peak-tflops`` (default: an H100/H200's dense
bf16 peak) at each ``--utilisation``.

Figures: ``tools/benchmark.py CONFIG --out FILE`` runs. The training phases
(``--impl ours reference``) at one batch size (scaled to the config's in
proportion) or at several (a line through them: a step's fixed work, such
as encoding the prompts, does not grow with the batch); ``--phase select
export`` for our inference. The
authors' selection and export compute the CAMs with the formula our
WeakTr head used before it stopped forming the fused attention map: give
figures of that code's select and export runs as ``--authors-inference``
(without them those cells stay empty). Dataset sizes are not in the configs:
VOC trainaug 10,582 (train 1,464 for the selection), COCO train 82,081
(WeakTr's selection subset 1,250).
"""
import argparse
import json

from mmengine.config import Config, DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n', 2)[2])
    parser.add_argument('config', help='the recipe')
    parser.add_argument('--figures', nargs='+', required=True,
                        help='tools/benchmark.py --out files of the recipe')
    parser.add_argument('--authors-inference', nargs='+', default=(),
                        help="figures whose select and export runs stand "
                        "for the authors' inference")
    for name in ('train', 'selection', 'export'):
        parser.add_argument(f'--{name}-images', type=int, required=True)
    parser.add_argument('--peak-tflops', type=float, default=989.4,
                        help='dense bf16 peak of the accelerator '
                        '(default: H100/H200 SXM, 989.4)')
    parser.add_argument('--utilisation', type=float, nargs='+',
                        default=[0.35],
                        help='fractions of the peak to project at')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    for name in ('train_images', 'selection_images', 'export_images'):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1.")
    if not all(0 < u <= 1 for u in args.utilisation):
        parser.error('--utilisation: fractions in (0, 1], e.g. 0.35.')
    return args


def main(argv=None):
    args = parse_args(argv)
    from semples_experiments.benchmark.recipe_cost import (flops_points,
                                                           format_recipe_cost,
                                                           recipe_cost)
    from semples_experiments.benchmark.runner import INFERENCE_PHASES
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    reports = []
    for path in args.figures:
        with open(path) as f:
            reports.append(json.load(f))
    for path in args.authors_inference:
        with open(path) as f:
            report = json.load(f)
        runs = [dict(run, impl='reference') for run in report['runs']
                if run['phase'] in INFERENCE_PHASES and run['impl'] == 'ours']
        reports.append(dict(report, runs=runs))
    rows = recipe_cost(cfg, flops_points(reports), args.train_images,
                       args.selection_images, args.export_images)
    table = format_recipe_cost(
        rows, args.peak_tflops,
        [(f'{u:.0%}', u) for u in args.utilisation],
        title=f'Cost of {args.config}')
    print(table)
    return rows


if __name__ == '__main__':
    main()
