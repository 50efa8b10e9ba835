"""Speed of SemPLeS training steps and pseudo-mask export on random data.

    python tools/benchmark.py CONFIG
        [--phase cam match prompt refine export select]
        [--batch-size N] [--iters N] [--warmup N] [--device cpu|cuda]
        [--export-batch-size N] [--export-image-size H W]
        [--export-end-to-end N [--export-num-workers N] [--export-data DIR]]
        [--ours | --reference | --reference-frozen-clip | --impl NAME ...]
        [--random-init] [--amp] [--prompt-bank]
        [--num-threads N] [--profile]
        [--cfg-options key=value ...] [--out figures.json]

Real ``model.train_step`` calls of each phase (data preprocessor, forward,
backward, the config's optimizer) on one random batch of the config's image
size and classes (1-3 classes per image), then the pseudo-mask export path
on whole images as the export reads them (resized by the config's
val_dataloader pipeline, CAMs normalised at the image's own size);
``select`` times the model selection's inference on such images
(BestCAMSelectionHook's ``model.val_step`` with the model's test_cfg, at
its loader's batch size). ``--profile`` adds, per run, where one more
step's time goes by operator and by module, beside the counted FLOPs.
Printed per phase: images/s and (image, class) pairs/s (batch over the
median step time), median step time with its p10-p90 spread, peak memory
(and the part the run itself added) and counted FLOPs; on CUDA the model
FLOPs utilisation against the GPU's bf16 peak (the assumption is printed).

By default every training phase runs three times in one process, from the
same weights: ours; ``reference``, the same losses computed the way the
authors' training steps compute them (CLIP's weights trainable, so every
backward computes their gradients; one class text per (image, class) pair
tokenised and encoded with gradients, twice a match step; in refine a
third encoding of the foreground crops and of the texts, and the prompts
encoded with gradients; the CAM network's backbone under autograd; a
Python loop over the pairs); and ``reference_frozen_clip``, the same with
CLIP's weights frozen. Printed: the speed ratio of ours over each, and the
difference of their first-step losses. ``--ours``, ``--reference`` or
``--reference-frozen-clip`` times one of them, ``--impl`` any.

Paper-scale configs build without any weight file with ``--random-init``
(backbone ``init_cfg`` 'Pretrained' dropped, ``model.clip.pretrained=None``):
    python tools/benchmark.py configs/semples/voc.py --random-init \\
        --device cuda --batch-size 64
"""
import argparse
import json
import os
import os.path as osp

from mmengine.config import DictAction

PHASE_CHOICES = ('cam', 'match', 'prompt', 'refine', 'export', 'select')
IMPL_CHOICES = ('ours', 'reference', 'reference_frozen_clip')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n', 2)[2])
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--phase', nargs='+', choices=PHASE_CHOICES, default=None,
        help="phases to time (default: the model's phases, then export)")
    parser.add_argument('--batch-size', type=int, default=None,
                        help='images per step (default: the config\'s '
                        'train_dataloader.batch_size)')
    parser.add_argument('--iters', type=int, default=20,
                        help='timed steps per phase (default 20)')
    parser.add_argument('--warmup', type=int, default=3,
                        help='untimed steps before them (default 3)')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default=None,
                        help='default: cuda when available, else cpu')
    which = parser.add_mutually_exclusive_group()
    which.add_argument('--ours', dest='impl', action='store_const',
                       const=['ours'], help='time only this implementation')
    which.add_argument('--reference', dest='impl', action='store_const',
                       const=['reference'],
                       help="time only the authors' way (the yardstick)")
    which.add_argument('--reference-frozen-clip', dest='impl',
                       action='store_const', const=['reference_frozen_clip'],
                       help="time only the authors' way with CLIP frozen")
    which.add_argument('--impl', nargs='+', default=None,
                       choices=IMPL_CHOICES,
                       help='the implementations to time (default: all)')
    parser.add_argument(
        '--random-init', action='store_true',
        help='random weights: drop Pretrained init_cfg and '
        'model.clip.pretrained (no weight file needed)')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision as tools/train.py --amp: '
                        'fp16 AmpOptimWrapper on CUDA, bf16 '
                        'BF16OptimWrapper on CPU; the export under bf16 '
                        'autocast (pseudo_label_cfg.amp)')
    parser.add_argument(
        '--prompt-bank', action='store_true',
        help="our prompt phase reads a FixedViewBankCropFeatures bank "
        "of the batch's images, built once before the timed steps")
    parser.add_argument(
        '--export-batch-size', type=int, default=None,
        help='images per export batch (default: pseudo_label_cfg.batch_size,'
        ' else --batch-size)')
    parser.add_argument(
        '--export-image-size', type=int, nargs=2, metavar=('H', 'W'),
        default=None,
        help='size of the dataset images the export reads; the export '
        "pipeline's Resize is applied to it (default: 375 500, the commonest "
        'VOC size, when that pipeline resizes, else the training image '
        'size)')
    parser.add_argument(
        '--export-end-to-end', type=int, metavar='N', default=None,
        help='also time the whole export (data loading, inference, PNG '
        'writing) of N random VOC-layout images of the export image size, '
        "through the config's val_dataloader")
    parser.add_argument('--export-num-workers', type=int, default=None,
                        help='dataloader workers of that export (default: '
                        "the val_dataloader's)")
    parser.add_argument('--export-data', default=None,
                        help='keep its random images in this folder '
                        '(default: a temporary folder)')
    parser.add_argument('--num-threads', type=int, default=None,
                        help='torch CPU threads (1 on a shared CPU)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the weights and the batch')
    parser.add_argument('--no-flops', action='store_true',
                        help='skip the FLOP count (one extra step a run)')
    parser.add_argument('--peak-tflops', type=float, default=None,
                        help='bf16 peak of the GPU for the MFU (default: '
                        'looked up from the GPU name)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    parser.add_argument(
        '--profile', action='store_true',
        help='after the timed steps of each run, profile one more '
        '(torch.profiler): time by operator and by module beside the '
        'counted FLOPs, as markdown tables')
    parser.add_argument('--out', help='write the figures to this JSON file')
    args = parser.parse_args(argv)
    import torch
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: CUDA is not available on this machine '
                     '(torch.cuda.is_available() is False); use --device '
                     'cpu or run on a GPU machine.')
    if args.iters < 1 or args.warmup < 0:
        parser.error('--iters must be >= 1 and --warmup >= 0.')
    for name in ('batch_size', 'export_batch_size', 'export_end_to_end'):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1.")
    if args.export_image_size is not None and min(args.export_image_size) < 1:
        parser.error('--export-image-size H W must be positive.')
    if args.device is None:
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    return args


def main(argv=None):
    args = parse_args(argv)
    import torch

    from semples_experiments.benchmark import (PHASES, TRAIN_PHASES,
                                               format_report, load_config,
                                               run_benchmark)
    if args.num_threads is not None:
        torch.set_num_threads(args.num_threads)
    device = args.device
    cfg, changed = load_config(args.config, args.cfg_options,
                               args.random_init, args.amp, device)
    if changed:
        print(f'[benchmark] --random-init dropped: {", ".join(changed)}')
    batch_size = args.batch_size or cfg.train_dataloader.batch_size
    if args.phase:
        phases = [p for p in PHASES if p in args.phase]
    else:
        model_phases = [p['name'] for p in cfg.model.get('phases', [])]
        phases = [p for p in TRAIN_PHASES if p in model_phases] + ['export']
    impls = [i for i in IMPL_CHOICES if i in (args.impl or IMPL_CHOICES)]

    report = run_benchmark(cfg, phases, impls, batch_size, args.iters,
                           args.warmup, device, args.seed,
                           flops=not args.no_flops,
                           peak_tflops=args.peak_tflops,
                           prompt_bank=args.prompt_bank,
                           export_batch_size=args.export_batch_size,
                           export_image_size=args.export_image_size,
                           export_end_to_end=args.export_end_to_end,
                           export_num_workers=args.export_num_workers,
                           export_data_root=args.export_data,
                           profile=args.profile)
    report['meta'].update(config=args.config, amp=args.amp,
                          random_init=changed, impls=impls)
    print(format_report(report, title=f'SemPLeS benchmark: {args.config}'))
    if args.out:
        folder = osp.dirname(osp.abspath(args.out))
        os.makedirs(folder, exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
        print(f'[benchmark] figures written to {args.out}')
    return report


if __name__ == '__main__':
    main()
