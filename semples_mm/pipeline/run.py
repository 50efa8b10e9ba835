"""The pipeline's steps: world -> SemPLeS (pseudo masks after cam, match,
refine) -> DeepLabV2 on the SemPLeS masks -> its val mIoU.

Every step is skipped when its outputs exist, so a rerun does only what is
missing and a killed run continues (training steps resume from their last
checkpoint).
"""
import gc
import json
import os
import os.path as osp
import time
from typing import Sequence

from mmengine.logging import print_log

from ..apis import make_pseudo_labels, test_checkpoint, train
from ..models.segmentors.phase_schedule import PhaseSchedule
from ..utils.paths import PACKAGE_ROOT
from .derived_configs import (EXPORTS, derive_deeplab_config,
                              derive_semples_config, split_name)
from .record import PipelineRecord
from .results import (collect_val_per_phase, format_seed_table,
                      format_table, mean_over_seeds)

# the checkout's configs/ folder, beside the package
SYNTHETIC_DEEPLAB_CONFIG = str(
    PACKAGE_ROOT.parent / 'configs' / 'deeplabv2' /
    'deeplabv2_tiny_synthetic_pseudo.py')


def final_checkpoint(work_dir, max_iters):
    """``<work_dir>/iter_<max_iters>.pth`` if training finished, else None."""
    path = osp.join(work_dir, f'iter_{max_iters}.pth')
    return path if osp.isfile(path) else None


def _read_json(path):
    if not osp.isfile(path):
        return {}
    with open(path) as file:
        return json.load(file)


def _export_results(semples_dir, schedule):
    """{label: summary entry} of the three exports; entries written at an
    iteration other than their phase end (a stale file) are left out."""
    exports = _read_json(osp.join(semples_dir, 'summary.json'))
    found = {}
    for label, phase in EXPORTS:
        entry = exports.get(label)
        if entry is not None and entry.get('iter') == schedule[phase].end:
            found[label] = entry
    return found


def _pseudo_mask_row(entry):
    return dict(
        mIoU=entry.get('mIoU'), best_threshold=entry.get('best_threshold'),
        bg_threshold_written=entry.get('bg_threshold'),
        split=entry.get('split'), num_images=entry.get('num_images'),
        scales=entry.get('scales'), flip=entry.get('flip'),
        crf=entry.get('crf'), iter=entry.get('iter'),
        out_dir=entry.get('out_dir'))


def _check_record(record, **settings):
    """A work dir holds one run: refuse other settings than recorded."""
    for key, value in settings.items():
        if key in record.data and record.data[key] != value:
            raise ValueError(
                f'{record.path} records {key}={record.data[key]!r}, not '
                f'{value!r}: use another --work-dir for other settings (or '
                'delete the folder)')
    record.update(**settings)


def run_pipeline(config, work_dir, seed=0, deeplab_config=None,
                 quick=False, data_root=None, score_split=None, tta=False):
    """Run (or finish) the whole pipeline in ``work_dir``.

    Layout: ``configs/`` (the derived configs), ``data/`` (the synthetic
    world), ``semples/`` (SemPLeS work dir; ``pseudo_masks/<label>``),
    ``deeplabv2/`` (DeepLabV2 work dir), ``summary.json``.

    Args:
        config (str): SemPLeS config.
        work_dir (str): output folder of this run.
        seed (int): training seed and synthetic-world seed.
        deeplab_config (str, optional): DeepLabV2 config; default the tiny
            synthetic one for configs with a synthetic world.
        quick (bool): tiny world and iterations (tests, smoke runs).
        data_root (str, optional): synthetic-world folder; default
            ``<work_dir>/data/synthetic_world_seed<seed>``.
        score_split (str, optional): image list to export and score the
            pseudo masks on (e.g. VOC 'train'); default: the training list.
            Otherwise the DeepLabV2 masks of the training list are written
            by make_pseudo_labels in an extra step.
        tta (bool): multi-scale + flip DeepLabV2 test.

    Returns:
        dict: the contents of ``<work_dir>/summary.json``.
    """
    start = time.perf_counter()
    work_dir = osp.abspath(work_dir)
    os.makedirs(osp.join(work_dir, 'configs'), exist_ok=True)
    record = PipelineRecord(osp.join(work_dir, 'summary.json'))
    if data_root is None:
        data_root = osp.join(work_dir, 'data', f'synthetic_world_seed{seed}')
    score_ann_file = None if score_split is None else (
        score_split if score_split.endswith('.txt') else
        f'ImageSets/Segmentation/{score_split}.txt')

    semples_cfg, world = derive_semples_config(
        config, seed, data_root=data_root, quick=quick,
        score_ann_file=score_ann_file)
    if deeplab_config is None:
        if world is None:
            raise ValueError(f'{config} has no synthetic world: pass '
                             '--deeplab-config (e.g. configs/deeplabv2/'
                             'deeplabv2_r101_voc_pseudo.py)')
        deeplab_config = SYNTHETIC_DEEPLAB_CONFIG
    _check_record(record, config=osp.abspath(config), seed=seed,
                  quick=bool(quick),
                  deeplab_config=osp.abspath(deeplab_config),
                  data_root=osp.abspath(data_root) if world else None,
                  score_split=score_split)
    semples_cfg_path = osp.join(work_dir, 'configs', 'semples.py')
    semples_cfg.dump(semples_cfg_path)
    semples_dir = osp.join(work_dir, 'semples')
    schedule = PhaseSchedule(semples_cfg.model.phases)
    semples_iters = schedule.total_iters

    # 1. the synthetic world
    if world is not None:
        from semples_mm.datasets.synthetic import generate_synthetic_world
        record.run_step(
            'world',
            lambda: dict(data_root=osp.abspath(generate_synthetic_world(
                data_root, **world)), **world),
            finished=lambda: 'world.json exists' if osp.isfile(
                osp.join(data_root, 'world.json')) else None)

    # 2. SemPLeS through all phases, exporting pseudo masks at phase ends
    def semples_finished():
        if final_checkpoint(semples_dir, semples_iters) is None:
            return None
        missing = [label for label, _ in EXPORTS
                   if label not in _export_results(semples_dir, schedule)]
        if missing:
            raise RuntimeError(
                f'{semples_dir} holds the final checkpoint but '
                f'{osp.join(semples_dir, "summary.json")} lacks the '
                f'exports {missing} of the pipeline; delete {semples_dir} to '
                'train again')
        return 'final checkpoint and the three exports exist'

    def train_semples():
        train(semples_cfg_path, work_dir=semples_dir, resume=True)
        gc.collect()  # let dataloader workers of the finished runner go

    record.run_step('semples', train_semples, finished=semples_finished)
    exports = _export_results(semples_dir, schedule)
    missing = [label for label, _ in EXPORTS if label not in exports]
    if missing:
        raise RuntimeError(f'SemPLeS training finished without the exports '
                           f'{missing} in {semples_dir}/summary.json')
    record.update(
        pseudo_masks={label: _pseudo_mask_row(exports[label])
                      for label, _ in EXPORTS},
        cam_val_per_phase=collect_val_per_phase(semples_dir, schedule))

    # 2b. DeepLabV2's masks when the scored list is not the training list
    mask_dir = exports['semples']['out_dir']
    if score_split is not None:
        train_dataset = semples_cfg.train_dataloader.dataset
        train_split = split_name(train_dataset.ann_file)
        mask_dir = osp.join(semples_dir, 'pseudo_masks',
                            f'semples_{train_split}')
        label = f'semples_{train_split}'

        def export_train_list():
            # the training list's masks and labels, the export settings of
            # the config (model.test_cfg, pseudo_label_cfg)
            options = {f'val_dataloader.dataset.{key}': value
                       for key, value in (
                           ('data_prefix.seg_map_path',
                            train_dataset.data_prefix.get('seg_map_path')),
                           ('label_seg_map_path',
                            train_dataset.get('label_seg_map_path')))
                       if value is not None}
            make_pseudo_labels(
                semples_cfg_path, final_checkpoint(semples_dir, semples_iters),
                mask_dir, split=train_dataset.ann_file, label=label,
                work_dir=semples_dir, cfg_options=options)

        record.run_step(
            'export_train_list', export_train_list,
            finished=lambda: f'{label} in semples/summary.json' if label in
            _read_json(osp.join(semples_dir, 'summary.json')) else None)

    # 3. DeepLabV2 on the SemPLeS pseudo masks, then its val mIoU
    deeplab_cfg = derive_deeplab_config(deeplab_config, seed, mask_dir,
                                        data_root=data_root, quick=quick)
    deeplab_cfg_path = osp.join(work_dir, 'configs', 'deeplabv2.py')
    deeplab_cfg.dump(deeplab_cfg_path)
    deeplab_dir = osp.join(work_dir, 'deeplabv2')
    deeplab_iters = deeplab_cfg.train_cfg.max_iters

    def train_deeplab():
        train(deeplab_cfg_path, work_dir=deeplab_dir, resume=True)
        gc.collect()

    record.run_step(
        'deeplabv2_train', train_deeplab,
        finished=lambda: 'final checkpoint exists' if final_checkpoint(
            deeplab_dir, deeplab_iters) else None)

    def test_deeplab():
        checkpoint = final_checkpoint(deeplab_dir, deeplab_iters)
        result = test_checkpoint(deeplab_cfg_path, checkpoint,
                                 osp.join(deeplab_dir, 'test'), tta=tta)
        record.update(deeplabv2=result)
        gc.collect()

    record.run_step(
        'deeplabv2_test', test_deeplab,
        finished=lambda: 'deeplabv2.mIoU in summary.json' if record.data.get(
            'deeplabv2', {}).get('mIoU') is not None else None)

    record.update(
        total_wall_s=round(sum(entry.get('wall_s') or 0.0
                               for entry in record.data['steps'].values()),
                           1),
        this_invocation_wall_s=round(time.perf_counter() - start, 1))
    print_log(f'[pipeline] results of {work_dir} (seed {seed}):\n' +
              format_table(record.data), logger='current')
    return record.data


def run_seeds(config, work_dir, seeds: Sequence[int], **kwargs):
    """:func:`run_pipeline` once per seed in ``<work_dir>/seed<s>``, then
    the mean table in ``<work_dir>/seeds_summary.json``.

    Returns:
        dict: row -> per-seed values, mean and std.
    """
    summaries = [
        run_pipeline(config, osp.join(work_dir, f'seed{seed}'), seed=seed,
                     **kwargs) for seed in seeds
    ]
    rows = mean_over_seeds(summaries)
    path = osp.join(work_dir, 'seeds_summary.json')
    with open(path, 'w') as file:
        json.dump(dict(seeds=list(seeds), rows=rows), file, indent=2)
    print_log(f'[pipeline] mean over seeds {list(seeds)} ({path}):\n' +
              format_seed_table(rows), logger='current')
    return rows
