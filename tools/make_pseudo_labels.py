"""Write pseudo masks of a dataset split from a trained CAM model.

    python tools/make_pseudo_labels.py CONFIG CHECKPOINT --out DIR \
        [--split train|val|trainaug|<ann_file>] [--scales 1.0 1.2] \
        [--bg-threshold 0.43|val] [--batch-size N] [--crf] [--amp] \
        [--save-cams DIR [--cams-format weaktr|fma-wsss]] \
        [--launcher none|pytorch|slurm] [--cfg-options key=value ...]

Settings resolve as for every export: the model's ``test_cfg``, then the
config's ``pseudo_label_cfg``, then the command line. Images come from the
config's ``val_dataloader`` (or ``--dataloader test``) with the split's
image list. Masks are ``<out>/<img_id>.png`` (VOC palette, ids 0..K); the
folder records what produced them (``.export.json``): a rerun of the same
export skips finished images, another export into it is refused unless
``--overwrite``. The checkpoint must hold the whole CAM network. With ground
truth for every image, the
pseudo-mask mIoU over the config's background-threshold sweep is computed
in the same pass. The summary is stored under ``--label`` in
``<work-dir>/summary.json``.

``--bg-threshold val`` (or ``pseudo_label_cfg.bg_threshold='val'``): one
pass over the config's ``val_dataloader`` scores its CAMs over the sweep
(no files written), and the masks are written at its best threshold; the
summary and the folder's ``.export.json`` record it (``bg_threshold``) and
where it came from (``bg_threshold_choice``: the val split, its sweep's best
mIoU). The validation split needs ground truth for every image.

``--save-cams DIR`` also writes each image's CAM score maps before
thresholding (its labelled classes, at the original size, in [0, 1]):
``--cams-format weaktr`` (default), ``DIR/<img_id>.npy`` as WeakTr's and
the SemPLeS authors' CAM generation writes it (a dict {0-based class index:
(H, W) float32 map}; their ``evaluation.py --type npy`` reads it), or
``fma-wsss``, ``DIR/<img_id>.npz`` with ``cam`` (P, H, W) and ``fg_cls``
(P,) as FMA-WSSS's SAM-seed step reads it. Every image is inferred and its
CAM file rewritten on each run.

Multi-process: ``torchrun --nproc_per_node N tools/make_pseudo_labels.py ...
--launcher pytorch`` (gloo on CPU, nccl on GPUs); every rank writes its
shard.
"""
import argparse

from mmengine.config import DictAction


def _threshold(text):
    """A number, or 'val' (chosen on the validation split)."""
    if text == 'val':
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: need a number in [0, 1] or 'val'") from None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n', 2)[2])
    parser.add_argument('config', help='config file of the CAM model')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', required=True,
                        help='output folder of the PNG masks')
    parser.add_argument(
        '--split', default='train', help='train, val, trainaug '
        '(ImageSets/Segmentation/<split>.txt) or an image-list path relative '
        'to data_root')
    parser.add_argument('--scales', type=float, nargs='+',
                        help='CAM input scales, e.g. 1.0 1.2')
    parser.add_argument('--no-flip', action='store_true',
                        help='no horizontal-flip CAMs')
    parser.add_argument('--bg-threshold', type=_threshold,
                        help="background score of the written masks, or "
                        "'val': the best of the validation split's sweep")
    parser.add_argument('--crf', action='store_true',
                        help='refine with a dense CRF (pip install '
                        'pydensecrf2)')
    parser.add_argument('--amp', action='store_true',
                        help='infer the CAMs under bf16 autocast')
    parser.add_argument('--batch-size', type=int,
                        help='images per dataloader batch; those of one size '
                        'are inferred together')
    parser.add_argument('--num-workers', type=int,
                        help='dataloader workers')
    parser.add_argument('--crf-workers', type=int,
                        help='CRF processes (default: CPU count)')
    parser.add_argument('--save-cams', metavar='DIR',
                        help='also write each image\'s CAM score maps '
                        '(before thresholding) into DIR')
    parser.add_argument('--cams-format', choices=['weaktr', 'fma-wsss'],
                        default='weaktr', help='layout of --save-cams: '
                        "weaktr (<id>.npy, WeakTr's and the SemPLeS "
                        "authors') or fma-wsss (<id>.npz, FMA-WSSS's)")
    parser.add_argument('--overwrite', action='store_true',
                        help='replace the masks of another export found in '
                        '--out (default: refuse, saying what it holds)')
    parser.add_argument('--no-eval', action='store_true',
                        help='do not score the masks even with ground truth')
    parser.add_argument('--dataloader', choices=['val', 'test'],
                        default='val', help='config dataloader to read')
    parser.add_argument('--work-dir', help='folder of summary.json (default: '
                        'the config work_dir or ./work_dirs/<config name>)')
    parser.add_argument('--label', default=None,
                        help='key in summary.json (default: the out folder '
                        'name)')
    parser.add_argument('--device', default=None,
                        help='cuda / cpu (default: cuda when available)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'],
                        default='none', help='job launcher')
    parser.add_argument('--no-progress', action='store_true')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from semples_mm.apis import make_pseudo_labels
    from semples_mm.utils.launch import finish_distributed
    summary = make_pseudo_labels(
        args.config, args.checkpoint, args.out, split=args.split,
        label=args.label, work_dir=args.work_dir, dataloader=args.dataloader,
        evaluate=not args.no_eval, device=args.device,
        launcher=args.launcher, progress=not args.no_progress,
        cfg_options=args.cfg_options, overwrite=args.overwrite,
        cams_dir=args.save_cams, cams_format=args.cams_format,
        scales=args.scales,
        flip=False if args.no_flip else None,
        bg_threshold=args.bg_threshold, crf=True if args.crf else None,
        amp=True if args.amp else None, batch_size=args.batch_size,
        num_workers=args.num_workers, crf_workers=args.crf_workers)
    finish_distributed()
    return summary


if __name__ == '__main__':
    main()
