"""Write pseudo masks of a dataset split from a trained CAM model.

    python tools/make_pseudo_labels.py CONFIG CHECKPOINT --out DIR \
        [--split train|val|trainaug|<ann_file>] [--scales 1.0 1.2] \
        [--bg-threshold 0.43] [--batch-size N] [--crf] [--amp] \
        [--launcher none|pytorch] \
        [--cfg-options key=value ...]

Settings default from the config's ``pseudo_label_cfg`` (see DEFAULTS), then
the command line. Images come from the config's ``val_dataloader`` (or
``--dataloader test``) with the split's image list. Masks are
``<out>/<img_id>.png`` (VOC palette, ids 0..K); a rerun skips finished
images. With ground truth for every image, the pseudo-mask mIoU over the
background-threshold sweep is computed in the same pass. The summary is
stored under ``--label`` in ``<work-dir>/summary.json``.

Multi-process: ``torchrun --nproc_per_node N tools/make_pseudo_labels.py ...
--launcher pytorch`` (gloo on CPU, nccl on GPUs); every rank writes its
shard.
"""
import argparse
import copy
import os
import os.path as osp

from mmengine.config import Config, DictAction

DEFAULTS = dict(
    scales=(1.0, 1.2),
    flip=True,
    bg_threshold=0.43,
    crf=False,
    crf_cfg=None,
    crf_workers=None,
    amp=False,
    out_dir=None,
    split='train',
    batch_size=None,
    num_workers=None,
    metric=dict(type='PseudoMaskMetric'),
)
# transforms that need a mask file; dropped when a split lacks masks
MASK_TRANSFORMS = ('LoadAnnotations', 'CheckSegMapValues')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file of the CAM model')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='output folder of the PNG masks '
                        '(default: pseudo_label_cfg.out_dir)')
    parser.add_argument(
        '--split', help='train, val, trainaug (ImageSets/Segmentation/'
        '<split>.txt) or an image-list path relative to data_root')
    parser.add_argument('--scales', type=float, nargs='+',
                        help='CAM input scales, e.g. 1.0 1.2')
    parser.add_argument('--no-flip', action='store_true',
                        help='no horizontal-flip CAMs')
    parser.add_argument('--bg-threshold', type=float,
                        help='background score of the written masks')
    parser.add_argument('--crf', action='store_true',
                        help='refine with a dense CRF (pip install '
                        'pydensecrf2)')
    parser.add_argument('--amp', action='store_true',
                        help='infer the CAMs under bf16 autocast (default: '
                        'pseudo_label_cfg.amp)')
    parser.add_argument('--batch-size', type=int,
                        help='images per dataloader batch; those of one size '
                        'are inferred together (default: pseudo_label_cfg.'
                        'batch_size, else the dataloader\'s)')
    parser.add_argument('--num-workers', type=int,
                        help='dataloader workers (default: pseudo_label_cfg.'
                        'num_workers, else the dataloader\'s)')
    parser.add_argument('--crf-workers', type=int,
                        help='CRF processes (default: CPU count)')
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
    parser.add_argument('--launcher', choices=['none', 'pytorch'],
                        default='none', help='job launcher')
    parser.add_argument('--no-progress', action='store_true')
    return parser.parse_args(argv)


def export_settings(cfg, args):
    """DEFAULTS < cfg.pseudo_label_cfg < command line."""
    settings = copy.deepcopy(DEFAULTS)
    from_cfg = cfg.get('pseudo_label_cfg') or {}
    unknown = set(from_cfg) - set(settings)
    if unknown:
        raise KeyError(f'{args.config}: unknown pseudo_label_cfg key(s) '
                       f'{sorted(unknown)}; known: {sorted(settings)}')
    settings.update(copy.deepcopy(dict(from_cfg)))
    overrides = dict(out_dir=args.out, split=args.split,
                     scales=args.scales, bg_threshold=args.bg_threshold,
                     crf_workers=args.crf_workers,
                     batch_size=args.batch_size,
                     num_workers=args.num_workers)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if args.no_flip:
        settings['flip'] = False
    if args.crf:
        settings['crf'] = True
    if args.amp:
        settings['amp'] = True
    if args.no_eval:
        settings['metric'] = None
    if not settings['out_dir']:
        raise ValueError('no output folder: pass --out DIR or set '
                         f'pseudo_label_cfg.out_dir in {args.config}')
    return settings


def split_ann_file(split):
    """'train' -> 'ImageSets/Segmentation/train.txt'; paths pass through."""
    if '/' in split or split.endswith('.txt'):
        return split
    return f'ImageSets/Segmentation/{split}.txt'


def build_dataset(cfg, dataloader_cfg, ann_file, want_masks):
    """The split's dataset; drops mask transforms if some image has none.

    Returns:
        tuple: (dataset, has_masks).
    """
    from mmseg.registry import DATASETS
    from semples_mm.pseudo_labels import dataset_has_masks
    dataset_cfg = copy.deepcopy(dataloader_cfg['dataset'])
    dataset_cfg['ann_file'] = ann_file
    dataset = DATASETS.build(dataset_cfg)
    has_masks = dataset_has_masks(dataset)
    if not has_masks:
        from mmengine.dataset import Compose
        from mmengine.logging import print_log
        pipeline = [t for t in dataset_cfg.get('pipeline', [])
                    if t.get('type') not in MASK_TRANSFORMS]
        dataset.pipeline = Compose(pipeline)
        print_log(f'{ann_file}: not every image has a mask, so the masks are '
                  'written without loading ground truth or scoring'
                  + (' (the metric is off)' if want_masks else ''),
                  logger='current')
    return dataset, has_masks


def main(argv=None):
    args = parse_args(argv)
    import torch
    from mmengine.dist import is_main_process
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner, load_checkpoint
    from mmseg.registry import MODELS

    import semples_mm  # noqa: F401  (registers our components)
    from semples_mm.pseudo_labels import (export_pseudo_masks,
                                          in_order_loader_cfg,
                                          update_summary_file)
    from semples_mm.utils.launch import (finish_distributed,
                                         start_process_group)

    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    settings = export_settings(cfg, args)
    start_process_group(args.launcher)

    loader_key = f'{args.dataloader}_dataloader'
    if not isinstance(cfg.get(loader_key), dict):
        raise KeyError(f'{args.config} has no {loader_key}; the images of the'
                       ' split are read through it')
    dataloader_cfg = copy.deepcopy(cfg[loader_key].to_dict() if hasattr(
        cfg[loader_key], 'to_dict') else cfg[loader_key])
    ann_file = split_ann_file(settings['split'])
    dataset, has_masks = build_dataset(cfg, dataloader_cfg, ann_file,
                                       settings['metric'] is not None)
    loader_cfg = in_order_loader_cfg(
        dataloader_cfg, batch_size=settings['batch_size'],
        num_workers=settings['num_workers'])
    loader_cfg['dataset'] = dataset
    dataloader = Runner.build_dataloader(loader_cfg, seed=0)

    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device == 'cuda':
        device = f'cuda:{int(os.environ.get("LOCAL_RANK", 0))}'
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu')
    model.to(device)

    evaluator = [settings['metric']] if settings['metric'] is not None \
        and has_masks else None
    summary = export_pseudo_masks(
        model, dataloader, settings['out_dir'], scales=settings['scales'],
        flip=settings['flip'], bg_threshold=settings['bg_threshold'],
        crf=settings['crf'], crf_cfg=settings['crf_cfg'],
        crf_workers=settings['crf_workers'], amp=settings['amp'],
        evaluator=evaluator,
        split=settings['split'], progress=not args.no_progress)
    summary['checkpoint'] = osp.abspath(args.checkpoint)
    if is_main_process():
        work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
            './work_dirs', osp.splitext(osp.basename(args.config))[0])
        label = args.label or osp.basename(
            osp.normpath(settings['out_dir']))
        update_summary_file(osp.join(work_dir, 'summary.json'), label,
                            summary)
        scored = '' if summary.get('mIoU') is None else (
            f", mIoU {summary['mIoU']} (best bg threshold "
            f"{summary['best_threshold']})")
        print(f"{summary['num_images']} images of {settings['split']} -> "
              f"{summary['out_dir']} ({summary['num_written']} written, "
              f"{summary['num_skipped']} already there, "
              f"{summary['images_per_s']} images/s){scored}; summary in "
              f"{osp.join(work_dir, 'summary.json')}['{label}']")
    finish_distributed()
    return summary


if __name__ == '__main__':
    main()
