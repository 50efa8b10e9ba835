"""The runner's steps: world -> SemPLeS -> pseudo masks after cam, match
and refine -> each segmentor (DeepLabV2 by default) on the SemPLeS masks,
and on the ground truth for the fully supervised upper bound -> its val
mIoU.

A step records its inputs (configs, settings, digests of the weights or
masks it reads, a fingerprint of the data folders) when it starts, and is
skipped while its outputs exist and load and its inputs are those it ran
with; when they changed, even for a step that was killed, it runs again
from scratch, and so does every step that reads its outputs. A killed run
with unchanged inputs continues: training resumes from its last loadable
checkpoint, an export from its phase-end weights. One runner per work dir
at a time (a lock file).
"""
import gc
import glob
import json
import os
import os.path as osp
import shutil
import time
from contextlib import nullcontext
from typing import Sequence

from mmengine.config import Config
from mmengine.dist import barrier, broadcast_object_list, is_main_process
from mmengine.logging import print_log

from semples_mm.apis import make_pseudo_labels, test_checkpoint, train
from semples_mm.engine.hooks.phase_checkpoint_hook import phase_checkpoint_path
from semples_mm.models.segmentors.phase_schedule import PhaseSchedule
from semples_mm.pseudo_labels import export_settings, pseudo_mask_metric
from semples_mm.pseudo_labels.manifest import damaged_masks, read_manifest
from semples_mm.utils.atomic_file import remove_stale_temp_files
from semples_mm.utils.checkpoints import checkpoint_problem, read_state_dict
from semples_mm.utils.fingerprint import files_fingerprint, state_fingerprint
from semples_mm.utils.launch import start_process_group
from semples_mm.utils.read_back import DamagedFile
from semples_mm.utils.work_dir_lock import WorkDirLock
from ..shipped_configs import shipped_config
from .derived_configs import (EXPORTS, data_paths, derive_segmentor_config,
                              derive_semples_config, export_dataloader,
                              split_name)
from .record import ExperimentRecord
from .set_aside import (move_aside, phase_end_problems,
                        rewind_before_broken_phase_ends)
from .results import (collect_val_per_phase, format_seed_table,
                      format_table, mean_over_seeds)

SMALL_DEEPLAB_CONFIG = 'deeplabv2/deeplabv2_tiny_synthetic_pseudo.py'
# (key in summary['segmentors'][stem], suffix of the run's name): what a
# segmentor trains on
MASK_SOURCES = (('semples_masks', ''), ('ground_truth', '_gt'))
# work-dir folders of the runner's other steps
RESERVED_NAMES = ('configs', 'data', 'semples', 'pseudo_masks')
# Config keys that do not change trained weights (validation, logging,
# exports): left out of a training step's inputs.
NOT_TRAINING_INPUTS = ('pseudo_label_cfg', 'val_dataloader',
                       'test_dataloader', 'val_evaluator', 'test_evaluator',
                       'val_cfg', 'test_cfg', 'default_hooks', 'work_dir',
                       'visualizer', 'vis_backends', 'log_level',
                       'log_processor', 'filename', 'tta_model',
                       'tta_pipeline')


def final_checkpoint(work_dir, max_iters):
    """``<work_dir>/iter_<max_iters>.pth`` if training finished (the file
    loads), else None."""
    path = osp.join(work_dir, f'iter_{max_iters}.pth')
    return path if checkpoint_problem(path) is None else None


# ... except where a model selection picks the weights by validation
SELECTION_INPUTS = ('val_dataloader', 'val_evaluator')


def training_inputs(cfg: Config) -> dict:
    """What a training step's weights depend on: the config without its
    validation, logging and export settings (the model's test_cfg too),
    except those a ``BestCAMSelectionHook`` selects the weights with."""
    selects = any(hook.get('type') == 'BestCAMSelectionHook'
                  for hook in cfg.get('custom_hooks') or [])
    ignored = set(NOT_TRAINING_INPUTS) - (
        set(SELECTION_INPUTS) if selects else set())
    inputs = {k: v for k, v in cfg.to_dict().items() if k not in ignored}
    if not selects:
        inputs['model'] = {k: v for k, v in inputs['model'].items()
                           if k != 'test_cfg'}
    return inputs


def _weights_digest(path):
    return state_fingerprint(read_state_dict(
        path, remedy='Rerun the experiment runner: it checks the step that '
        'wrote the file, and runs it again.'))


def data_fingerprint(cfg, exclude=()):
    """What a step knows of the data it reads: :func:`files_fingerprint`
    of the folders and files of the dataset configs in ``cfg``."""
    return files_fingerprint(data_paths(cfg, exclude))


def _changed_step_outputs(folder):
    """``on_changed`` of a training step: its old run is kept aside, never
    resumed under other inputs."""
    return lambda: move_aside(folder, 'the inputs of its step changed')


def _export_finished(record, step, out_dir):
    """A reason when ``out_dir`` holds the complete export that ``step``
    recorded (the manifest loads, its fingerprint is the recorded one and
    every mask has the size recorded when it was complete), else None:
    masks moved aside, damaged or left half-written, or a damaged
    manifest, make the step run again."""
    try:
        manifest = read_manifest(out_dir) or {}
    except DamagedFile as error:  # the export starts afresh
        print_log(f'[experiment] {error}', logger='current')
        return None
    recorded = (record.result(step) or {}).get('fingerprint')
    if not (manifest.get('complete') and recorded and
            manifest.get('fingerprint') == recorded):
        return None
    damaged = damaged_masks(out_dir, manifest)
    if damaged:
        print_log(f'[experiment] {out_dir}: {len(damaged)} mask(s) differ '
                  f'from the export as it was completed: {damaged}',
                  logger='current')
        return None
    return f'{out_dir} holds its complete export'


def _remove_leftovers(work_dir, data_root):
    """Delete what killed writers left in the work dir, which this run
    holds: temporary files (checkpoints, masks, JSON files), and the
    temporary folders of a synthetic world's generation when the world
    lies inside it (a world elsewhere may be shared with a live run)."""
    removed = remove_stale_temp_files(work_dir, recursive=True)
    parent, name = osp.split(data_root or '')
    inside = data_root and osp.commonpath([work_dir, data_root]) == work_dir
    for kind in ('tmp', 'old') if data_root else ():
        # generate_synthetic_world's folders
        for folder in glob.glob(osp.join(parent, f'.{name}.{kind}-*')):
            if inside:
                shutil.rmtree(folder)
                removed += 1
            else:
                print_log(f'[experiment] {folder} looks like what a killed '
                          'world generation left; delete it if no other '
                          'run is generating this world', logger='current')
    if removed:
        print_log(f'[experiment] removed {removed} temporary file(s) or '
                  f'folder(s) that a killed run left in {work_dir}',
                  logger='current')


def _pseudo_mask_row(entry):
    metrics = entry.get('metrics') or {}
    return dict(
        mIoU=entry.get('mIoU'), best_threshold=entry.get('best_threshold'),
        # the best at an end of the sweep: the mIoU is only a lower bound
        best_at_sweep_edge=next((v for k, v in metrics.items()
                                 if k.endswith('best_at_sweep_edge')), None),
        bg_threshold_written=entry.get('bg_threshold'),
        split=entry.get('split'), num_images=entry.get('num_images'),
        scales=entry.get('scales'), flip=entry.get('flip'),
        crf=entry.get('crf'), checkpoint=entry.get('checkpoint'),
        weights=entry.get('weights'), out_dir=entry.get('out_dir'))


def _check_record(record, **settings):
    """A work dir holds one run: refuse other settings than recorded."""
    for key, value in settings.items():
        if key in record.data and record.data[key] != value:
            raise ValueError(
                f'{record.path} records {key}={record.data[key]!r}, not '
                f'{value!r}: use another --work-dir for other settings (or '
                'delete the folder)')
    record.update(**settings)


def segmentor_runs(seg_configs, ground_truth_bound):
    """The segmentor trainings of a run: ``(config, stem, source, name)``
    per config and mask source, where ``name`` (the config file's stem,
    ``_gt`` added for the ground truth) names the run's work subfolder,
    derived config and steps."""
    runs = []
    for config in seg_configs:
        stem = osp.splitext(osp.basename(config))[0]
        runs += [(config, stem, source, stem + suffix)
                 for source, suffix in MASK_SOURCES
                 if ground_truth_bound or source == 'semples_masks']
    names = [run[3] for run in runs]
    clashes = sorted({name for name in names if names.count(name) > 1} |
                     set(names) & set(RESERVED_NAMES))
    if clashes:
        raise ValueError(
            f'segmentor configs {list(seg_configs)}: the work subfolder(s) '
            f'{clashes} would be shared (a name twice, or one of the '
            f"runner's {list(RESERVED_NAMES)}); each config needs a file "
            'name of its own: copy one under another name')
    return runs


def _train_and_test_segmentor(record, work_dir, name, cfg, masks, tta,
                              launcher):
    """Train ``cfg`` in ``<work_dir>/<name>`` (step ``<name>_train``), test
    its final checkpoint (``<name>_test``) and return the test's result.

    Args:
        masks (str | None): the digest of the pseudo masks it trains on
            (their folder is then left out of the data fingerprint); None
            for the ground truth, which the data fingerprint covers.
    """
    cfg_path = osp.join(work_dir, 'configs', f'{name}.py')
    _on_rank_zero(lambda: cfg.dump(cfg_path))
    folder = osp.join(work_dir, name)
    iters = cfg.train_cfg.max_iters
    train_masks = cfg.train_dataloader.dataset.data_prefix.seg_map_path

    def train_segmentor():
        train(cfg_path, work_dir=folder, resume=True, launcher=launcher)
        gc.collect()

    inputs = training_inputs(cfg)
    record.run_step(
        f'{name}_train', train_segmentor,
        inputs=dict(config=inputs, masks=masks,
                    data=data_fingerprint(inputs, exclude=(
                        train_masks, ) if masks else ())),
        finished=lambda: 'final checkpoint exists' if final_checkpoint(
            folder, iters) else None,
        on_changed=_changed_step_outputs(folder))

    checkpoint = final_checkpoint(folder, iters)
    record.run_step(
        f'{name}_test',
        lambda: test_checkpoint(cfg_path, checkpoint,
                                osp.join(folder, 'test'), tta=tta,
                                launcher=launcher),
        inputs=dict(weights=_weights_digest(checkpoint), tta=bool(tta),
                    test_dataloader=cfg.test_dataloader,
                    test_evaluator=cfg.test_evaluator,
                    data=data_fingerprint(cfg.test_dataloader)))
    root = cfg.train_dataloader.dataset.get('data_root') or ''
    return dict(record.result(f'{name}_test') or {},
                trained_on=osp.join(root, train_masks))


def _on_rank_zero(function):
    """``function()`` on rank 0 alone (file writing); every rank returns
    its result."""
    result = [function() if is_main_process() else None]
    broadcast_object_list(result)  # (nothing to do in one process)
    return result[0]


def run_experiment(config, work_dir, seed=0, seg_configs=None,
                   ground_truth_bound=False, quick=False, data_root=None,
                   score_split=None, tta=False, no_rerun=False,
                   launcher='none'):
    """Run (or finish) the whole experiment in ``work_dir``.

    Layout: ``configs/`` (the derived configs), ``data/`` (the synthetic
    world), ``semples/`` (SemPLeS work dir: checkpoints, the CAM network of
    each phase end, whatever the config's hooks write),
    ``pseudo_masks/<label>`` (the runner's exports), ``<stem>/`` (the
    work dir of the segmentor config ``<stem>.py`` on the SemPLeS masks),
    ``<stem>_gt/`` (on the ground truth), ``summary.json``.

    Args:
        config (str): SemPLeS config.
        work_dir (str): output folder of this run.
        seed (int): training seed and synthetic-world seed.
        seg_configs (Sequence[str], optional): mmseg segmentor configs,
            each trained on the SemPLeS masks and tested in turn. One on
            the synthetic world takes the SemPLeS config's data and classes
            (:func:`~.derived_configs.follows_semples_data`); one on a real
            dataset (e.g. the R101 VOC DeepLabV2) is used as it is, except
            for its training masks. Default: the tiny DeepLabV2
            (``configs/deeplabv2/deeplabv2_tiny_synthetic_pseudo.py``),
            whose result is also ``summary['deeplabv2']``.
        ground_truth_bound (bool): also train each segmentor on the
            training list's ground truth (the fully supervised upper bound
            WSSS papers compare with), tested the same way.
        quick (bool): tiny world and iterations (tests, smoke runs).
        data_root (str, optional): synthetic-world folder; default
            ``<work_dir>/data/synthetic_world_seed<seed>``.
        score_split (str, optional): image list to export and score the
            pseudo masks on (e.g. VOC 'train'); default: the training list.
            Otherwise the segmentors' masks of the training list are written
            in an extra step.
        tta (bool): multi-scale + flip test of the segmentors (their
            config's ``tta_pipeline``).
        no_rerun (bool): refuse (naming what changed) instead of rerunning
            a finished step whose inputs changed.
        launcher (str): 'none', 'pytorch' or 'slurm': every step runs in
            all processes of the launch (training, exports and the test
            split their data), rank 0 writes the files.

    Returns:
        dict: the contents of ``<work_dir>/summary.json``.
    """
    work_dir = osp.abspath(work_dir)
    start_process_group(launcher)
    with WorkDirLock(work_dir, 'run_experiment') if is_main_process() else \
            nullcontext():
        return _run_experiment(config, work_dir, seed, seg_configs,
                               ground_truth_bound, quick, data_root,
                               score_split, tta, no_rerun, launcher)


def _run_experiment(config, work_dir, seed, seg_configs, ground_truth_bound,
                    quick, data_root, score_split, tta, no_rerun, launcher):
    start = time.perf_counter()
    os.makedirs(osp.join(work_dir, 'configs'), exist_ok=True)
    record = ExperimentRecord(osp.join(work_dir, 'summary.json'), no_rerun)
    if data_root is None:
        data_root = osp.join(work_dir, 'data', f'synthetic_world_seed{seed}')
    score_ann_file = None if score_split is None else (
        score_split if score_split.endswith('.txt') else
        f'ImageSets/Segmentation/{score_split}.txt')

    semples_cfg, world = derive_semples_config(
        config, seed, data_root=data_root, quick=quick)
    # the segmentors train on the SemPLeS masks of the training list
    train_list = semples_cfg.train_dataloader.dataset.ann_file
    mask_label = 'semples' if score_split is None else \
        f'semples_{split_name(train_list)}'
    mask_dir = osp.join(work_dir, 'pseudo_masks', mask_label)
    # Without segmentor configs, the tiny DeepLabV2 on the SemPLeS config's
    # data: a new dataset needs one config only. Their configs are derived
    # now: a wrong one must not wait for the end of SemPLeS's training.
    default_segmentor = not seg_configs
    seg_configs = [osp.abspath(c) for c in seg_configs or
                   [shipped_config(SMALL_DEEPLAB_CONFIG)]]
    segmentor_cfgs = [
        (seg_config, stem, source, name, derive_segmentor_config(
            seg_config, seed,
            mask_dir if source == 'semples_masks' else None,
            data_root=data_root, quick=quick, semples_cfg=semples_cfg))
        for seg_config, stem, source, name in segmentor_runs(
            seg_configs, ground_truth_bound)]
    _check_record(record, config=osp.abspath(config), seed=seed,
                  quick=bool(quick),
                  data_root=osp.abspath(data_root) if world else None,
                  score_split=score_split)
    # The segmentors are no setting of the run: each has its own folder and
    # steps, whose recorded inputs decide what runs again; the record names
    # this invocation's (runs recorded before with `deeplab_config`
    # continue under the new key).
    record.data.pop('deeplab_config', None)
    record.update(seg_configs=seg_configs,
                  ground_truth_bound=bool(ground_truth_bound))
    _on_rank_zero(lambda: _remove_leftovers(
        work_dir, osp.abspath(data_root) if world else None))
    semples_cfg_path = osp.join(work_dir, 'configs', 'semples.py')
    _on_rank_zero(lambda: semples_cfg.dump(semples_cfg_path))
    semples_dir = osp.join(work_dir, 'semples')
    schedule = PhaseSchedule(semples_cfg.model.phases)

    # 1. the synthetic world
    if world is not None:
        from semples_mm.datasets.synthetic import generate_synthetic_world
        record.run_step(
            'world',
            lambda: _on_rank_zero(lambda: dict(data_root=osp.abspath(
                generate_synthetic_world(data_root, **world)), **world)),
            inputs=world,
            finished=lambda: 'world.json exists' if osp.isfile(
                osp.join(data_root, 'world.json')) else None)

    # 2. SemPLeS through all phases, keeping each phase end's CAM network
    exported_phases = [phase for _, phase in EXPORTS]

    def semples_finished():
        if final_checkpoint(semples_dir, schedule.total_iters) is None:
            return None
        problems = phase_end_problems(semples_dir, exported_phases)
        for phase, why in problems.items():
            print_log(f'[experiment] '
                      f'{phase_checkpoint_path(semples_dir, phase)}: {why}',
                      logger='current')
        return None if problems else \
            'the final and the phase-end checkpoints load'

    def train_semples():
        # a phase end that the run has passed without its checkpoint:
        # back to before it, or the resume would never write it again
        _on_rank_zero(lambda: rewind_before_broken_phase_ends(
            semples_dir, schedule, exported_phases))
        train(semples_cfg_path, work_dir=semples_dir, resume=True,
              launcher=launcher)
        gc.collect()  # let dataloader workers of the finished runner go

    inputs = training_inputs(semples_cfg)
    record.run_step('semples', train_semples,
                    inputs=dict(inputs, data=data_fingerprint(inputs)),
                    finished=semples_finished,
                    on_changed=_changed_step_outputs(semples_dir))

    # 3. the pseudo masks of each phase end, one restartable step each
    loader = export_dataloader(semples_cfg, score_ann_file)
    split = split_name(loader['dataset']['ann_file'])
    metric = pseudo_mask_metric(semples_cfg)
    settings = export_settings(semples_cfg)

    def export(label, checkpoint, out_dir, loader, split, metric):
        summary = make_pseudo_labels(
            semples_cfg_path, checkpoint, out_dir, split=split,
            label=label, work_dir=semples_dir, dataloader_cfg=loader,
            metric=metric, evaluate=metric is not None, overwrite=True,
            progress=False, launcher=launcher)
        gc.collect()
        return summary

    rows = {}
    for label, phase in EXPORTS:
        checkpoint = phase_checkpoint_path(semples_dir, phase)
        out_dir = osp.join(work_dir, 'pseudo_masks', label)
        record.run_step(
            f'export_{label}',
            lambda c=checkpoint, o=out_dir, lb=label: export(
                lb, c, o, loader, loader['dataset']['ann_file'], metric),
            inputs=dict(weights=_weights_digest(checkpoint),
                        settings=settings, dataloader=loader, metric=metric,
                        data=data_fingerprint(loader)),
            finished=lambda s=f'export_{label}', o=out_dir: _export_finished(
                record, s, o))
        rows[label] = _pseudo_mask_row(dict(record.result(f'export_{label}'),
                                            split=split))
    record.update(pseudo_masks=rows,
                  cam_val_per_phase=collect_val_per_phase(semples_dir,
                                                          schedule))

    # 3b. the segmentors' masks when the scored list is not the training list
    if score_split is not None:
        checkpoint = phase_checkpoint_path(semples_dir, 'refine')
        train_loader = export_dataloader(semples_cfg)
        record.run_step(
            'export_train_list',
            lambda: export(mask_label, checkpoint, mask_dir, train_loader,
                           train_list, None),
            inputs=dict(weights=_weights_digest(checkpoint),
                        settings=settings, dataloader=train_loader,
                        data=data_fingerprint(train_loader)),
            finished=lambda: _export_finished(record, 'export_train_list',
                                              mask_dir))

    # 4. each segmentor on the SemPLeS masks (and on the ground truth),
    # then its val mIoU
    masks_digest = (read_manifest(mask_dir) or {}).get('fingerprint')
    segmentors = {}
    for seg_config, stem, source, name, seg_cfg in segmentor_cfgs:
        result = _train_and_test_segmentor(
            record, work_dir, name, seg_cfg,
            masks_digest if source == 'semples_masks' else None, tta,
            launcher)
        segmentors.setdefault(stem, dict(config=seg_config))[source] = result
    # 'deeplabv2': the default run's result, where summaries had it before
    # several segmentors (another invocation's is dropped)
    record.data.pop('deeplabv2', None)
    if default_segmentor:
        record.data['deeplabv2'] = next(iter(segmentors.values()))[
            'semples_masks']
    record.update(segmentors=segmentors)

    # The steps of this invocation count: those of a segmentor left out of
    # it (or of an older runner's step names) keep their entries, which a
    # later run of theirs checks, but are no part of this run.
    steps = record.data['steps']
    record.update(
        current_steps=record.visited,
        total_wall_s=round(sum(steps[step].get('wall_s') or 0.0
                               for step in record.visited), 1),
        this_invocation_wall_s=round(time.perf_counter() - start, 1))
    print_log(f'[experiment] results of {work_dir} (seed {seed}):\n' +
              format_table(record.data), logger='current')
    return record.data


def run_seeds(config, work_dir, seeds: Sequence[int], **kwargs):
    """:func:`run_experiment` once per seed in ``<work_dir>/seed<s>``, then
    the mean table in ``<work_dir>/seeds_summary.json``.

    Returns:
        dict: row -> per-seed values, mean and std.
    """
    summaries = [
        run_experiment(config, osp.join(work_dir, f'seed{seed}'), seed=seed,
                     **kwargs) for seed in seeds
    ]
    rows = mean_over_seeds(summaries)
    path = osp.join(work_dir, 'seeds_summary.json')
    if is_main_process():
        with open(path, 'w') as file:
            json.dump(dict(seeds=list(seeds), rows=rows), file, indent=2)
    print_log(f'[experiment] mean over seeds {list(seeds)} ({path}):\n' +
              format_seed_table(rows), logger='current')
    return rows
