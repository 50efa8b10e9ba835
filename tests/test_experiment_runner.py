"""tools/run_experiment.py: the whole experiment end to end at --quick size,
reruns that skip finished steps, several segmentors and the ground-truth
bound, the derived configs and the seed table."""
import glob
import importlib.util
import json
import os
import os.path as osp
import shutil

import pytest
from mmengine.config import Config

from semples_experiments.runner import (QUICK_SETTINGS,
                                        derive_segmentor_config,
                                        derive_semples_config,
                                        follows_semples_data,
                                        format_seed_table, format_table,
                                        mean_over_seeds)
from semples_experiments.runner.derived_configs import export_dataloader
from semples_mm.pseudo_labels import export_settings

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SYNTHETIC = osp.join(ROOT, 'configs', 'semples', 'synthetic.py')
DEEPLAB = osp.join(ROOT, 'configs', 'deeplabv2',
                   'deeplabv2_tiny_synthetic_pseudo.py')
DEEPLAB_STEM = 'deeplabv2_tiny_synthetic_pseudo'
VOC_R101 = osp.join(ROOT, 'configs', 'deeplabv2',
                    'deeplabv2_r101_voc_pseudo.py')
QUICK_WORLD = QUICK_SETTINGS['world']
QUICK_ARGS = ['--quick', '--seed', '1', '--num-threads', '1']
SEMPLES_STEPS = ('world', 'semples', 'export_cam', 'export_match',
                 'export_semples')
STEPS = SEMPLES_STEPS + (f'{DEEPLAB_STEM}_train', f'{DEEPLAB_STEM}_test')


def load_runner_tool():
    spec = importlib.util.spec_from_file_location(
        'pipeline_tool', osp.join(ROOT, 'tools', 'run_experiment.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_derived_semples_config(tmp_path):
    data_root = str(tmp_path / 'world')
    cfg, world = derive_semples_config(SYNTHETIC, seed=3,
                                       data_root=data_root, quick=True)
    assert world['seed'] == 3
    assert world['num_train'] == QUICK_SETTINGS['world']['num_train']
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[key].dataset
        assert dataset.data_root == osp.abspath(data_root)
        assert dataset.synthetic_world['seed'] == 3
    assert cfg.randomness.seed == 3
    assert 'max_iters' not in cfg.train_cfg  # the phases' sum
    # the user's hooks kept as they are; the CAM network of each exported
    # phase's end kept for the export steps
    user = Config.fromfile(SYNTHETIC).custom_hooks
    assert [h for h in cfg.custom_hooks if h.type != 'PhaseCheckpointHook'
            ] == [h for h in user if h.type != 'PhaseCheckpointHook']
    assert [h.label for h in cfg.custom_hooks
            if h.type == 'PseudoLabelHook'] == ['cam', 'semples']
    kept = [h for h in cfg.custom_hooks if h.type == 'PhaseCheckpointHook']
    assert len(kept) == 1 and kept[0].phases == ['cam', 'match', 'refine']
    # the exports read the training list with the validation pipeline (no
    # random flip), with the config's settings
    loader = export_dataloader(cfg)
    assert loader['dataset']['ann_file'] == \
        cfg.train_dataloader.dataset.ann_file
    assert loader['dataset']['test_mode'] is True
    assert loader['dataset']['pipeline'] == \
        cfg.val_dataloader.dataset.pipeline
    assert export_settings(cfg)['scales'] == (1.0, 1.2)
    scored = export_dataloader(cfg, 'ImageSets/Segmentation/val.txt')
    assert scored['dataset']['ann_file'] == 'ImageSets/Segmentation/val.txt'


def test_derived_deeplab_config(tmp_path):
    cfg = derive_segmentor_config(DEEPLAB, seed=1, mask_dir='masks',
                                  data_root=str(tmp_path), quick=True)
    train = cfg.train_dataloader.dataset
    assert train.data_prefix.seg_map_path == osp.abspath('masks')
    # labels and validation stay on the ground truth
    assert train.label_seg_map_path == 'SegmentationClass'
    assert cfg.val_dataloader.dataset.data_prefix.seg_map_path == \
        'SegmentationClass'
    assert train.synthetic_world['seed'] == 1
    iters = cfg.train_cfg.max_iters
    assert cfg.param_scheduler[0].end == iters
    assert cfg.train_cfg.val_begin > iters  # the pipeline tests it itself


def test_derived_deeplab_data_of_voc_trains_on_trainaug_and_tests_on_val():
    """Without --deeplab-config the small DeepLabV2 takes voc.py's data:
    trained on the trainaug masks, benchmarked on VOC val (the test list),
    never on VOC train, where voc.py validates its CAMs."""
    semples_cfg = Config.fromfile(osp.join(ROOT, 'configs', 'semples',
                                           'voc.py'))
    cfg = derive_segmentor_config(DEEPLAB, seed=0, mask_dir='masks',
                                  semples_cfg=semples_cfg)
    assert cfg.train_dataloader.dataset.ann_file == \
        'ImageSets/Segmentation/trainaug.txt'
    for key in ('val_dataloader', 'test_dataloader'):
        dataset = cfg[key].dataset
        assert dataset.ann_file == 'ImageSets/Segmentation/val.txt', key
        assert dataset.type == 'PascalVOCWSSSDataset'
        assert dataset.data_root == semples_cfg.train_dataloader.dataset.\
            data_root
    assert cfg.model.decode_head.num_classes == 21


def test_which_segmentor_configs_take_the_semples_data(tmp_path):
    """A segmentor config on the synthetic world takes the SemPLeS config's
    data and classes (all its heads); one on a real dataset keeps its own
    and changes only the masks it trains on."""
    assert follows_semples_data(Config.fromfile(DEEPLAB))
    assert not follows_semples_data(Config.fromfile(VOC_R101))
    voc_semples = Config.fromfile(osp.join(ROOT, 'configs', 'semples',
                                           'voc.py'))
    with_auxiliary = tmp_path / 'tiny_with_auxiliary_head.py'
    with_auxiliary.write_text(
        f"_base_ = ['{DEEPLAB}']\n"
        "model = dict(auxiliary_head=dict(type='FCNHead', in_channels=128, "
        "channels=16, num_convs=1, num_classes=6))\n")
    cfg = derive_segmentor_config(str(with_auxiliary), seed=0,
                                  mask_dir='masks', semples_cfg=voc_semples)
    assert cfg.train_dataloader.dataset.type == 'PascalVOCWSSSDataset'
    assert cfg.model.decode_head.num_classes == 21
    assert cfg.model.auxiliary_head.num_classes == 21

    own = Config.fromfile(VOC_R101)
    cfg = derive_segmentor_config(VOC_R101, seed=0, mask_dir='masks',
                                  semples_cfg=Config.fromfile(SYNTHETIC))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset, own_dataset = cfg[key].dataset, own[key].dataset
        for name in ('type', 'data_root', 'ann_file'):
            assert dataset[name] == own_dataset[name], (key, name)
    assert cfg.train_dataloader.dataset.data_prefix.seg_map_path == \
        osp.abspath('masks')
    assert cfg.model.decode_head.num_classes == 21


def test_ground_truth_configs_train_on_the_training_lists_ground_truth(
        tmp_path):
    """mask_dir=None (the fully supervised bound): the training masks are
    the training list's ground truth, the folder its labels come from."""
    cfg = derive_segmentor_config(DEEPLAB, seed=1, mask_dir=None,
                                  data_root=str(tmp_path), quick=True,
                                  semples_cfg=Config.fromfile(SYNTHETIC))
    train = cfg.train_dataloader.dataset
    assert train.data_prefix.seg_map_path == 'SegmentationClass'
    assert train.data_root == osp.abspath(tmp_path)
    assert train.ann_file == 'ImageSets/Segmentation/train.txt'
    voc = derive_segmentor_config(VOC_R101, seed=0, mask_dir=None)
    assert voc.train_dataloader.dataset.data_prefix.seg_map_path == \
        'SegmentationClassAug'  # trainaug's ground truth, not val's folder
    unlabelled = tmp_path / 'labels_from_a_file.py'
    unlabelled.write_text(
        f"_base_ = ['{VOC_R101}']\n"
        'train_dataloader = dict(dataset=dict(label_seg_map_path=None, '
        "label_file='cls_labels.npy'))\n")
    with pytest.raises(KeyError, match=r'labels_from_a_file\.py: train_'
                       r'dataloader\.dataset\.label_seg_map_path is not set'):
        derive_segmentor_config(str(unlabelled), seed=0, mask_dir=None)


def test_seg_config_options():
    tool = load_runner_tool()
    new = tool.parse_args(['--work-dir', 'w', '--seg-config', DEEPLAB])
    old = tool.parse_args(['--work-dir', 'w', '--deeplab-config', DEEPLAB])
    assert new.seg_config == old.seg_config == [DEEPLAB]
    two = tool.parse_args(['--work-dir', 'w', '--seg-config', DEEPLAB,
                           'b.py', '--ground-truth-bound'])
    assert two.seg_config == [DEEPLAB, 'b.py'] and two.ground_truth_bound
    default = tool.parse_args(['--work-dir', 'w'])
    assert default.seg_config is None and not default.ground_truth_bound


def test_segmentor_runs_need_names_of_their_own():
    from semples_experiments.runner.run import segmentor_runs
    assert [run[2:] for run in segmentor_runs(['a/x.py', 'y.py'], True)] \
        == [('semples_masks', 'x'), ('ground_truth', 'x_gt'),
            ('semples_masks', 'y'), ('ground_truth', 'y_gt')]
    for configs, gt, clash in ((['a/x.py', 'b/x.py'], False, "'x'"),
                               (['x.py', 'x_gt.py'], True, "'x_gt'"),
                               (['semples.py'], False, "'semples'")):
        with pytest.raises(ValueError, match=clash):
            segmentor_runs(configs, gt)
    assert len(segmentor_runs(['x.py', 'x_gt.py'], False)) == 2


def test_training_inputs_keep_what_a_model_selection_reads():
    """Validation settings do not change trained weights, unless a
    BestCAMSelectionHook picks the weights by them."""
    from semples_experiments.runner.run import training_inputs
    cfg = Config.fromfile(SYNTHETIC)
    plain = training_inputs(cfg)
    assert 'val_evaluator' not in plain and 'val_dataloader' not in plain
    assert 'test_cfg' not in plain['model'] and 'pseudo_label_cfg' not in plain
    cfg.custom_hooks.append(dict(type='BestCAMSelectionHook'))
    selecting = training_inputs(cfg)
    assert selecting['val_evaluator'] == cfg.val_evaluator
    assert selecting['val_dataloader'] == cfg.val_dataloader
    assert selecting['model']['test_cfg'] == cfg.model.test_cfg
    assert 'pseudo_label_cfg' not in selecting


def test_semples_config_without_a_phase_is_refused(tmp_path):
    config = tmp_path / 'no_match.py'
    config.write_text(
        f"_base_ = ['{SYNTHETIC}']\n"
        "model = dict(phases=[dict(name='cam', iters=2, optimizer='cam'), "
        "dict(name='refine', iters=2, optimizer='cam')])\n")
    with pytest.raises(ValueError, match='lack'):
        derive_semples_config(str(config), 0, data_root=str(tmp_path))


def test_mean_over_seeds_and_tables():
    summaries = [
        dict(seed=0, pseudo_masks=dict(cam=dict(mIoU=30.0),
                                       semples=dict(mIoU=60.0)),
             deeplabv2=dict(mIoU=50.0), total_wall_s=100.0),
        dict(seed=1, pseudo_masks=dict(cam=dict(mIoU=34.0),
                                       semples=dict(mIoU=64.0)),
             deeplabv2=dict(mIoU=56.0), total_wall_s=120.0),
    ]
    rows = mean_over_seeds(summaries)
    cam = rows['pseudo masks, CAM baseline (after cam)']
    assert cam['per_seed'] == {'0': 30.0, '1': 34.0}
    assert cam['mean'] == pytest.approx(32.0)
    # sample std of (30, 34): sqrt(((-2)^2 + 2^2) / 1)
    assert cam['std'] == pytest.approx(8**0.5)
    assert rows['DeepLabV2 on SemPLeS masks (val)']['mean'] == 53.0
    assert rows['pseudo masks, after match (SLM only)']['mean'] is None
    table = format_seed_table(rows)
    assert '| seed 0 | seed 1 | mean | std |' in table
    assert '| 30.0 | 34.0 | 32.0 | 2.8 |' in table
    assert '| 60.0 |' in format_table(summaries[0])


def test_seed_table_of_segmentors_on_pseudo_masks_and_ground_truth():
    def summary(seed, deeplab, deeplab_gt, segformer):
        return dict(seed=seed, segmentors=dict(
            deeplab=dict(semples_masks=dict(mIoU=deeplab, split='val'),
                         ground_truth=dict(mIoU=deeplab_gt, split='val')),
            segformer=dict(semples_masks=dict(mIoU=segformer))))

    summaries = [summary(0, 50.0, 62.5, 40.0), summary(1, 54.0, 60.0, 44.0)]
    rows = mean_over_seeds(summaries)
    assert rows['deeplab on SemPLeS masks (val)']['mean'] == 52.0
    gt = rows['deeplab on ground truth (upper bound) (val)']
    assert gt['per_seed'] == {'0': 62.5, '1': 60.0}
    # sample std of (62.5, 60): sqrt(2 * 1.25^2 / 1)
    assert gt['std'] == pytest.approx(1.25 * 2**0.5)
    # 50 / 62.5 = 80 %, 54 / 60 = 90 %
    ratio = rows['deeplab: SemPLeS masks / ground truth (%)']
    assert ratio['per_seed'] == {'0': pytest.approx(80.0),
                                 '1': pytest.approx(90.0)}
    assert ratio['mean'] == pytest.approx(85.0)
    assert rows['segformer on SemPLeS masks (val)']['mean'] == 42.0
    assert 'segformer: SemPLeS masks / ground truth (%)' not in rows
    table = format_seed_table(rows)
    assert '| deeplab: SemPLeS masks / ground truth (%) | 80.0 | 90.0 | ' \
        '85.0 | 7.1 |' in table
    one = format_table(summaries[0])
    assert '| deeplab on SemPLeS masks | 50.0 | - | val |' in one
    assert '| deeplab on ground truth (upper bound) | 62.5 | - | val |' in one
    assert '| segformer on SemPLeS masks | 40.0 | - | - |' in one


def _mtimes(work_dir):
    return {path: os.stat(path).st_mtime_ns for path in sorted(
        glob.glob(osp.join(work_dir, '*', '*.pth')))}


def test_quick_experiment_end_to_end_and_rerun(tmp_path, capfd):
    tool = load_runner_tool()
    work_dir = str(tmp_path / 'run')
    summary = tool.main(['--work-dir', work_dir] + QUICK_ARGS)

    with open(osp.join(work_dir, 'summary.json')) as file:
        assert json.load(file) == summary
    assert summary['seed'] == 1 and summary['quick'] is True
    assert summary['current_steps'] == list(STEPS)
    for step in STEPS:
        assert summary['steps'][step]['status'] == 'done'
        assert summary['steps'][step]['skipped_in_last_run'] is False
    # each step's wall time is part of the invocation's; they add up to the
    # run's total (each rounded to 0.1 s)
    walls = [summary['steps'][step]['wall_s'] for step in STEPS]
    assert min(walls[1:]) > 0  # training and testing take time
    assert summary['total_wall_s'] == pytest.approx(sum(walls), abs=0.05 *
                                                    len(walls))
    assert summary['total_wall_s'] <= summary['this_invocation_wall_s'] + 0.1
    with open(osp.join(summary['data_root'], 'world.json')) as file:
        assert json.load(file)['seed'] == 1
    for label in ('cam', 'match', 'semples'):
        masks = summary['pseudo_masks'][label]
        assert 0 <= masks['mIoU'] <= 100
        assert 0 < masks['best_threshold'] < 1
        assert masks['split'] == 'train'
        assert masks['num_images'] == QUICK_WORLD['num_train']
        # the same multi-scale + flip settings for all three exports
        assert (masks['scales'], masks['flip']) == (
            summary['pseudo_masks']['cam']['scales'],
            summary['pseudo_masks']['cam']['flip'])
        assert len(glob.glob(osp.join(masks['out_dir'], '*.png'))) == \
            QUICK_WORLD['num_train']
    deeplab = summary['deeplabv2']
    assert 0 <= deeplab['mIoU'] <= 100
    assert deeplab['split'] == 'val'
    assert deeplab['num_images'] == QUICK_WORLD['num_val']
    assert osp.isfile(deeplab['checkpoint'])
    # DeepLabV2 trained on the SemPLeS masks; 'deeplabv2' is its entry
    entry = summary['segmentors'][DEEPLAB_STEM]
    assert entry['semples_masks'] == deeplab and 'ground_truth' not in entry
    assert deeplab['trained_on'] == \
        summary['pseudo_masks']['semples']['out_dir']
    with open(osp.join(work_dir, 'configs', f'{DEEPLAB_STEM}.py')) as file:
        assert summary['pseudo_masks']['semples']['out_dir'] in file.read()
    assert set(summary['cam_val_per_phase']) == {'cam', 'match', 'refine'}
    # Each run of the process logs into its own folder (a visualizer with a
    # fixed name would keep the first run's).
    assert glob.glob(osp.join(work_dir, DEEPLAB_STEM, '*', 'vis_data',
                              'scalars.json'))
    for metrics in summary['cam_val_per_phase'].values():
        assert 0 <= metrics['pseudo/mIoU'] <= 100
    mtimes = _mtimes(work_dir)
    assert len(mtimes) >= 2  # SemPLeS and DeepLabV2 final checkpoints

    # rerun: every step is skipped, nothing is retrained
    capfd.readouterr()
    again = tool.main(['--work-dir', work_dir] + QUICK_ARGS)
    log = capfd.readouterr().out
    for step in STEPS:
        assert f'step {step}: skipped' in log
        assert again['steps'][step]['skipped_in_last_run'] is True
    assert _mtimes(work_dir) == mtimes
    assert again['pseudo_masks'] == summary['pseudo_masks']

    # masks moved away from a finished export: that export runs again (the
    # same masks: DeepLabV2, trained on the SemPLeS ones, stays)
    match_dir = summary['pseudo_masks']['match']['out_dir']
    shutil.move(match_dir, str(tmp_path / 'moved_by_hand'))
    capfd.readouterr()
    moved = tool.main(['--work-dir', work_dir] + QUICK_ARGS)
    log = capfd.readouterr().out
    assert 'step export_match: marked done, but its outputs are missing' \
        in log
    for step in STEPS:
        assert moved['steps'][step]['skipped_in_last_run'] is (
            step != 'export_match'), step
    assert len(glob.glob(osp.join(match_dir, '*.png'))) == \
        QUICK_WORLD['num_train']
    assert moved['pseudo_masks'] == summary['pseudo_masks']

    # a lost summary.json: finished training steps are recognised from
    # their outputs; the exports (which continue their folders: nothing is
    # written again) and the DeepLabV2 test run again for their results
    os.remove(osp.join(work_dir, 'summary.json'))
    capfd.readouterr()
    third = tool.main(['--work-dir', work_dir] + QUICK_ARGS)
    log = capfd.readouterr().out
    for step in ('world', 'semples', f'{DEEPLAB_STEM}_train'):
        assert f'step {step}: skipped' in log
    for step in ('export_cam', 'export_match', 'export_semples',
                 f'{DEEPLAB_STEM}_test'):
        assert f'step {step}: running' in log
        assert third['steps'][step]['skipped_in_last_run'] is False
    assert _mtimes(work_dir) == mtimes
    assert third['pseudo_masks'] == summary['pseudo_masks']
    assert all(third['steps'][f'export_{label}']['result']['num_written']
               == 0 for label in ('cam', 'match', 'semples'))
    assert third['deeplabv2']['mIoU'] == pytest.approx(deeplab['mIoU'])

    # a work dir holds one run: other settings are refused
    with pytest.raises(ValueError, match='seed'):
        tool.main(['--work-dir', work_dir, '--quick', '--seed', '2',
                   '--num-threads', '1'])


def test_table_flags_a_best_threshold_at_the_sweep_end():
    row = dict(mIoU=52.6, best_threshold=0.98, split='train',
               num_images=16)
    table = format_table(dict(pseudo_masks=dict(
        cam=dict(row, best_at_sweep_edge=False, best_threshold=0.7),
        match=dict(row, best_at_sweep_edge=True))))
    assert '| 0.98 (sweep end!) |' in table
    assert '| 0.70 |' in table
    assert 'after match (SLM only) is an end of the sweep' in table
    assert 'CAM baseline (after cam) is an end' not in table


def test_two_segmentors_and_the_ground_truth_bound_in_a_finished_run(
        tmp_path, capfd):
    """A run recorded before several segmentors (`deeplab_config`), rerun
    with two segmentor configs and --ground-truth-bound: SemPLeS and its
    exports are skipped, each segmentor trains in its own folder on the
    SemPLeS masks and on the ground truth; a rerun skips everything."""
    tool = load_runner_tool()
    work_dir = tmp_path / 'run'
    first = tool.main(['--work-dir', str(work_dir)] + QUICK_ARGS)
    summary_path = work_dir / 'summary.json'
    record = json.loads(summary_path.read_text())
    record['deeplab_config'] = DEEPLAB  # as runs before --seg-config wrote
    record['steps']['deeplabv2_train'] = dict(status='done', wall_s=1e4,
                                              inputs={})
    summary_path.write_text(json.dumps(record))
    # a second segmentor config: the tiny DeepLabV2 under another name
    second = tmp_path / 'second_segmentor.py'
    second.write_text(f"_base_ = ['{DEEPLAB}']\n"
                      'optim_wrapper = dict(optimizer=dict(lr=0.01))\n')
    args = ['--work-dir', str(work_dir), '--seg-config', DEEPLAB,
            str(second), '--ground-truth-bound'] + QUICK_ARGS
    names = (DEEPLAB_STEM, f'{DEEPLAB_STEM}_gt', 'second_segmentor',
             'second_segmentor_gt')
    capfd.readouterr()
    summary = tool.main(args)
    log = capfd.readouterr().out
    # the explicit tiny DeepLabV2 is the default one: its training stays
    for step in SEMPLES_STEPS + (f'{DEEPLAB_STEM}_train', ):
        assert f'step {step}: skipped' in log, step
    for name in names[1:]:
        assert f'step {name}_train: running' in log, name
        assert osp.isfile(work_dir / name / 'iter_6.pth'), name
    assert 'deeplab_config' not in summary and 'deeplabv2' not in summary
    # an old step keeps its entry but is no part of this run
    assert 'deeplabv2_train' in summary['steps']
    assert summary['current_steps'] == list(SEMPLES_STEPS) + [
        f'{name}_{kind}' for name in names for kind in ('train', 'test')]
    assert summary['total_wall_s'] == pytest.approx(sum(
        summary['steps'][step]['wall_s'] for step in
        summary['current_steps']), abs=0.05 * len(summary['current_steps']))
    assert summary['seg_configs'] == [DEEPLAB, str(second)]
    assert list(summary['segmentors']) == [DEEPLAB_STEM, 'second_segmentor']
    masks = summary['pseudo_masks']['semples']['out_dir']
    ground_truth = osp.join(summary['data_root'], 'SegmentationClass')
    for stem, config in ((DEEPLAB_STEM, DEEPLAB),
                         ('second_segmentor', str(second))):
        entry = summary['segmentors'][stem]
        assert entry['config'] == config
        assert entry['semples_masks']['trained_on'] == masks
        assert entry['ground_truth']['trained_on'] == ground_truth
        for source in ('semples_masks', 'ground_truth'):
            assert 0 <= entry[source]['mIoU'] <= 100, (stem, source)
            assert entry[source]['num_images'] == QUICK_WORLD['num_val']
    assert summary['segmentors'][DEEPLAB_STEM]['semples_masks']['mIoU'] == \
        pytest.approx(first['deeplabv2']['mIoU'])
    # the derived configs: the ground-truth runs read the world's masks
    for name in names:
        derived = Config.fromfile(str(work_dir / 'configs' / f'{name}.py'))
        dataset = derived.train_dataloader.dataset
        assert dataset.data_root == summary['data_root']
        assert dataset.data_prefix.seg_map_path == (
            'SegmentationClass' if name.endswith('_gt') else masks), name
    table = format_table(summary)
    for row in (f'{DEEPLAB_STEM} on SemPLeS masks',
                f'{DEEPLAB_STEM} on ground truth (upper bound)',
                'second_segmentor on ground truth (upper bound)'):
        assert f'| {row} |' in table, row
    assert '| deeplabv2_train |' not in table
    mtimes = _mtimes(work_dir)

    capfd.readouterr()
    again = tool.main(args)
    log = capfd.readouterr().out
    for step in SEMPLES_STEPS + tuple(f'{name}_{kind}' for name in names
                                      for kind in ('train', 'test')):
        assert f'step {step}: skipped' in log, step
        assert again['steps'][step]['skipped_in_last_run'] is True
    assert _mtimes(work_dir) == mtimes
    assert again['segmentors'] == summary['segmentors']
