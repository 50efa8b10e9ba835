"""Draw CAM and pseudo-mask overlays of a few images after each phase.

    python tools/analysis_tools/draw_phase_overlays.py RUN_DIR OUT.png \
        [--num-images 6] [--phases cam match refine] [--scale 2]

RUN_DIR is one seed's folder of ``tools/run_experiment.py``: its config
``configs/semples.py`` (the run's data root and export settings) and the
phase-end CAM networks ``semples/cam_network_after_<phase>.pth``. One PNG
grid: a row per image of the training list (in list order), columns the
image, its ground truth, then for each phase the CAM (pixel-wise maximum
over the image's classes) and the pseudo mask at the export's background
threshold (the config's, or the one ``bg_threshold='val'`` chose), both drawn by mmseg's ``SegLocalVisualizer``. CAMs come from
the same inference as the exports (``model.test_cfg`` then
``pseudo_label_cfg``: scales, flip), so the masks drawn are the exported
ones. The PNG is written in 256 colours.
"""
import argparse
import os
import os.path as osp

import mmcv
import numpy as np
import torch
from PIL import Image
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer

from semples_mm.apis.pseudo_labels import (CAM_NETWORK_PREFIXES,
                                           build_split_dataset,
                                           split_ann_file)
from semples_mm.models.cams import CAMInference, with_background
from semples_mm.pseudo_labels import export_settings, in_order_loader_cfg
from semples_mm.pseudo_labels.export import infer_batch_cams
from semples_mm.pseudo_labels.manifest import read_manifest
from semples_mm.pseudo_labels.settings import (VAL_THRESHOLD,
                                               inference_settings)
from semples_experiments.runner.derived_configs import EXPORTS
from semples_mm.utils.checkpoints import load_model_weights


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('run_dir', help='one seed\'s experiment-runner folder')
    parser.add_argument('out', help='the PNG to write')
    parser.add_argument('--num-images', type=int, default=6)
    parser.add_argument('--phases', nargs='+',
                        default=['cam', 'match', 'refine'])
    parser.add_argument('--scale', type=int, default=2,
                        help='nearest-neighbour upscaling of each panel')
    parser.add_argument('--split', default='train')
    args = parser.parse_args(argv)
    if args.num_images < 1 or args.scale < 1:
        parser.error(f'--num-images {args.num_images} and --scale '
                     f'{args.scale}: both must be at least 1')
    return args


def phase_checkpoints(run_dir, phases):
    """{phase: path} of the run's phase-end CAM networks; fails naming the
    missing files."""
    paths = {phase: osp.join(run_dir, 'semples',
                             f'cam_network_after_{phase}.pth')
             for phase in phases}
    missing = [path for path in paths.values() if not osp.isfile(path)]
    if missing:
        raise FileNotFoundError(
            f'{missing} not found: RUN_DIR must be one seed\'s folder of '
            'tools/run_experiment.py after its semples step (with --seeds, '
            'RUN_DIR/seed<S>), and --phases among those it kept')
    return paths


def phase_cams(model, checkpoint, inference, samples):
    """(K, H, W) normalised, label-restricted CAMs of each sample."""
    load_model_weights(model, checkpoint, required=CAM_NETWORK_PREFIXES)
    model.eval()
    with torch.no_grad():
        return [infer_batch_cams(model, inference, [s['inputs']],
                                 [s['data_samples']])[0].cpu()
                for s in samples]


def mask_threshold(run_dir, phase, settings):
    """The background threshold of the phase's exported masks: the
    config's, or with ``bg_threshold='val'`` the one its export chose and
    recorded in ``pseudo_masks/<label>/.export.json``."""
    if settings['bg_threshold'] != VAL_THRESHOLD:
        return settings['bg_threshold']
    label = {p: lb for lb, p in EXPORTS}.get(phase)
    folder = osp.join(run_dir, 'pseudo_masks', str(label))
    recorded = ((read_manifest(folder) or {}).get('settings') or {}).get(
        'bg_threshold')
    if not isinstance(recorded, (int, float)):
        raise FileNotFoundError(
            f"bg_threshold='{VAL_THRESHOLD}': {folder}/.export.json records "
            f'no threshold of phase {phase!r}; run tools/run_experiment.py '
            'on RUN_DIR to finish its exports (only cam, match and refine '
            'are exported)')
    return recorded


def draw_mask(visualizer, image, mask):
    """``image`` (H, W, 3 RGB) with the (H, W) class-id ``mask`` over it,
    background (0) left uncoloured."""
    sample = SegDataSample(pred_sem_seg=PixelData(data=mask[None]))
    visualizer.add_datasample('mask', image, sample, draw_gt=False,
                              with_labels=False)
    # the visualizer blends the whole image (background with black)
    return np.where((mask > 0)[..., None], visualizer.get_image(), image)


def draw_overlays(run_dir, phases=('cam', 'match', 'refine'),
                  num_images=6, split='train'):
    """The panel grid, (rows * H, columns * W, 3) uint8 RGB."""
    config = osp.join(run_dir, 'configs', 'semples.py')
    if not osp.isfile(config):
        raise FileNotFoundError(
            f'{config} not found: RUN_DIR must be one seed\'s folder of '
            'tools/run_experiment.py (it writes configs/semples.py)')
    checkpoints = phase_checkpoints(run_dir, phases)
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    settings = export_settings(cfg)
    loader_cfg = in_order_loader_cfg(cfg.val_dataloader)
    dataset, _ = build_split_dataset(loader_cfg, split_ann_file(split))
    samples = [dataset[i] for i in range(min(num_images, len(dataset)))]
    model = MODELS.build(cfg.model)
    inference = CAMInference(**inference_settings(settings))
    visualizer = SegLocalVisualizer(alpha=0.6)
    # set afterwards: SegLocalVisualizer.__init__ hands classes and palette
    # to set_dataset_meta in swapped order (mmseg 1.x)
    visualizer.dataset_meta = dict(classes=dataset.metainfo['classes'],
                                   palette=dataset.metainfo['palette'])
    images = [mmcv.imread(s['data_samples'].img_path, channel_order='rgb')
              for s in samples]
    sizes = sorted({image.shape[:2] for image in images})
    if len(sizes) > 1:
        raise ValueError(
            f'the first {len(images)} images of {split} have the sizes '
            f'{sizes}; the grid needs images of one size (as the synthetic '
            'world has): choose a --split list of such images')
    columns = [images, [draw_mask(visualizer, image, s['data_samples']
                                  .gt_sem_seg.data[0].numpy())
                        for image, s in zip(images, samples)]]
    for phase in phases:
        cams = phase_cams(model, checkpoints[phase], inference, samples)
        threshold = mask_threshold(run_dir, phase, settings)
        columns.append([visualizer.draw_featmap(
            cam.max(0, keepdim=True)[0], image, channel_reduction=None,
            topk=0)
            for cam, image in zip(cams, images)])
        columns.append([draw_mask(
            visualizer, image, with_background(
                cam[None], threshold)[0].argmax(0).numpy())
            for cam, image in zip(cams, images)])
    return np.concatenate([np.concatenate(row, axis=1)
                           for row in zip(*columns)], axis=0)


def main(argv=None):
    args = parse_args(argv)
    grid = draw_overlays(args.run_dir, args.phases, args.num_images,
                         args.split)
    grid = grid.repeat(args.scale, axis=0).repeat(args.scale, axis=1)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    # 256 colours: a fifth of the bytes, for figures committed to the docs
    Image.fromarray(grid).quantize(256).save(args.out, optimize=True)
    print(f'{args.out}: {grid.shape[0] // args.scale} x '
          f'{grid.shape[1] // args.scale} px before upscaling')
    return grid


if __name__ == '__main__':
    main()
