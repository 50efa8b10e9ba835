"""Nothing stale, nothing mixed, nothing silently wrong: exports, work dirs
and checkpoints under kills, reruns, concurrent runs and mistakes (each
test reproduces one failure a user met before)."""
import copy
import json
import multiprocessing
import os
import os.path as osp
import shutil
import time

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope
from mmseg.registry import DATASETS, MODELS

import semples_mm  # noqa: F401  (registers)
from conftest import (REPO_ROOT, TEST_CONFIGS, changed_pixel_fraction,
                      make_tiny_world,
                      load_tool, read_masks)
from semples_mm.apis import make_pseudo_labels, train
from semples_experiments.runner.record import InputsChanged
from semples_mm.utils.checkpoints import (AtomicLocalBackend,
                                          checkpoint_problem,
                                          resume_checkpoint)
from semples_mm.utils.work_dir_lock import LOCK_NAME, WorkDirLock

init_default_scope('mmseg')
TINY = str(TEST_CONFIGS / 'tiny_semples.py')
SYNTHETIC = str(REPO_ROOT / 'configs' / 'semples' / 'synthetic.py')


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    return make_tiny_world(tmp_path_factory.mktemp('reliability_world') /
                           'world')


def tiny_cfg(world_root, work_dir=None):
    cfg = Config.fromfile(TINY)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = str(world_root)
    if work_dir is not None:
        cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'reliability_{time.time_ns()}'
    return cfg


def save_weights(cfg, path, seed):
    """A checkpoint of the tiny model with weights drawn from ``seed``."""
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(copy.deepcopy(cfg.model))
    torch.save(dict(state_dict=model.state_dict()), path)
    return str(path)


# ------------------------------------------------ 1. exports never mix
def test_an_export_never_mixes_with_another(world, tmp_path):
    cfg = tiny_cfg(world, tmp_path / 'work')
    DATASETS.build(cfg.train_dataloader.dataset)  # generates the world
    a = save_weights(cfg, tmp_path / 'a.pth', seed=1)
    b = save_weights(cfg, tmp_path / 'b.pth', seed=2)
    out = str(tmp_path / 'masks')
    first = make_pseudo_labels(cfg, a, out, split='val', progress=False)
    assert first['num_written'] == 16
    # the same export again continues (nothing to write)
    again = make_pseudo_labels(cfg, a, out, split='val', progress=False)
    assert (again['num_written'], again['num_skipped']) == (0, 16)
    # another checkpoint or threshold into the same folder is refused,
    # saying what the folder holds
    with pytest.raises(RuntimeError, match=r'holds 16 masks of another '
                       r'export .*a\.pth'):
        make_pseudo_labels(cfg, b, out, split='val', progress=False,
                           bg_threshold=0.9)
    with pytest.raises(RuntimeError, match='bg_threshold 0.45'):
        make_pseudo_labels(cfg, a, out, split='val', progress=False,
                           bg_threshold=0.9)
    # --overwrite replaces them; the summary and the folder agree
    replaced = make_pseudo_labels(cfg, b, out, split='val',
                                  progress=False, bg_threshold=0.9,
                                  overwrite=True)
    assert replaced['num_written'] == 16 and replaced['bg_threshold'] == 0.9
    manifest = json.load(open(osp.join(out, '.export.json')))
    assert manifest['complete'] is True
    assert manifest['weights'] == replaced['weights'] != first['weights']
    assert manifest['checkpoint'] == osp.abspath(b)
    saved = json.load(open(tmp_path / 'work' / 'summary.json'))['masks']
    assert saved['weights'] == manifest['weights']
    # a folder of masks whose export is unknown is refused too
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'x.png').write_bytes(b'')
    with pytest.raises(RuntimeError, match='whose export is unknown'):
        make_pseudo_labels(cfg, a, str(foreign), split='val',
                           progress=False)


# ------------------------------------ 4. a checkpoint of another model
def test_a_checkpoint_of_another_model_is_refused(world, tmp_path):
    cfg = tiny_cfg(world, tmp_path / 'work')
    DATASETS.build(cfg.train_dataloader.dataset)
    deeplab = Config.fromfile(str(TEST_CONFIGS / 'tiny_encoder_decoder.py'))
    wrong = save_weights(deeplab, tmp_path / 'deeplab.pth', seed=0)
    with pytest.raises(ValueError, match=r'deeplab\.pth does not fit the '
                       r'SemPLeS .*missing .*cam_head\.classifier'):
        make_pseudo_labels(cfg, wrong, str(tmp_path / 'masks'),
                           split='val', progress=False)
    assert not osp.exists(tmp_path / 'masks')
    # tools/test.py: every key of the tested model must be there
    semples = save_weights(cfg, tmp_path / 'semples.pth', seed=0)
    config = tmp_path / 'deeplab_cfg.py'
    deeplab.dump(str(config))
    with pytest.raises(ValueError, match=r'semples\.pth does not fit the '
                       r'EncoderDecoder'):
        load_tool('test').main([str(config), semples, '--work-dir',
                                str(tmp_path / 'test'), '--cfg-options',
                                f'data_root={tmp_path}'])


# ------------------------------------------------ 2. one run per work dir
def _hold_lock(work_dir, ready, release):
    with WorkDirLock(work_dir, 'a first run'):
        ready.set()
        release.wait(60)


def test_a_second_run_in_a_work_dir_stops_and_a_stale_lock_is_taken(
        world, tmp_path, monkeypatch):
    work_dir = str(tmp_path / 'work')
    context = multiprocessing.get_context('fork')
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock,
                             args=(work_dir, ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(RuntimeError, match=rf'in use by another run: '
                           rf'process {holder.pid} .*a first run'):
            train(tiny_cfg(world), work_dir=work_dir)
        with pytest.raises(RuntimeError, match='in use by another run'):
            make_pseudo_labels(tiny_cfg(world), 'unused.pth',
                               str(tmp_path / 'm'), work_dir=work_dir)
    finally:
        release.set()
        holder.join(30)
    # a lock left by a process that died is taken over, with a log line
    dead = context.Process(target=os._exit, args=(0, ))
    dead.start()
    dead.join()
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, LOCK_NAME), 'w') as file:
        json.dump(dict(pid=dead.pid, host=os.uname().nodename,
                       what='a killed run'), file)
    logged = []
    monkeypatch.setattr('semples_mm.utils.work_dir_lock.print_log',
                        lambda message, **kwargs: logged.append(message))
    with WorkDirLock(work_dir, 'test'):
        assert json.load(open(osp.join(work_dir, LOCK_NAME)))['pid'] == \
            os.getpid()
    assert f'taking over the lock of process {dead.pid}' in logged[0]
    assert not osp.exists(osp.join(work_dir, LOCK_NAME))


# ---------------------------------- 5. checkpoints are whole or skipped
def test_checkpoint_writes_are_atomic_and_a_broken_one_is_skipped(
        tmp_path, monkeypatch):
    target = tmp_path / 'iter_4.pth'
    AtomicLocalBackend().put(b'old', str(target))

    def killed(*args):
        raise KeyboardInterrupt('killed while writing')

    monkeypatch.setattr(os, 'fsync', killed)
    with pytest.raises(KeyboardInterrupt):
        AtomicLocalBackend().put(b'new and longer', str(target))
    monkeypatch.undo()
    assert target.read_bytes() == b'old'  # never a truncated file
    assert os.listdir(tmp_path) == ['iter_4.pth']  # no temporary left
    # a resume starts from the newest checkpoint that loads
    torch.save(dict(meta=dict(iter=2)), tmp_path / 'iter_2.pth')
    target.write_bytes(b'')  # as a kill -9 left it before
    assert checkpoint_problem(str(target)) == 'it is empty (0 bytes)'
    logged = []
    monkeypatch.setattr('semples_mm.utils.checkpoints.print_log',
                        lambda message, **kwargs: logged.append(message))
    assert resume_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_2.pth')
    assert f"skipping broken checkpoint(s) ['{target} (it is empty" in \
        logged[0]
    assert f"resuming from {tmp_path / 'iter_2.pth'}" in logged[0]


@pytest.mark.float_compare
def test_training_resumes_past_a_broken_last_checkpoint(world, tmp_path):
    work_dir = tmp_path / 'work'
    cfg = tiny_cfg(world, work_dir)
    cfg.train_cfg.max_iters = 4
    cfg.model.phases = [dict(name='cam', iters=4, optimizer='cam')]
    cfg.model.update(clip=None, prompt_learner=None, match_loss=None,
                     prompt_loss=None, refine_loss=None)
    cfg.optim_wrapper = dict(type='OptimWrapper', optimizer=dict(
        type='AdamW', lr=1e-3))
    full = train(cfg)
    final = work_dir / 'iter_4.pth'
    weights = torch.load(final, weights_only=False)['state_dict']
    final.write_bytes(b'')
    cfg.experiment_name += '_resumed'
    train(cfg, resume=True)  # from iter_2.pth, not the broken iter_4.pth
    assert checkpoint_problem(str(final)) is None
    resumed = torch.load(final, weights_only=False)['state_dict']
    key = 'cam_head.classifier.weight'
    torch.testing.assert_close(resumed[key], weights[key], rtol=0, atol=0)
    assert full.iter == 4


# ------------------------------------------- 7. settings checked at build
def test_bad_settings_fail_when_the_model_is_built(world, tmp_path):
    cfg = Config.fromfile(TINY)

    def build(**changes):
        model_cfg = copy.deepcopy(cfg.model)
        for key, value in changes.items():
            parent, _, leaf = key.rpartition('.')
            node = model_cfg
            for part in filter(None, parent.split('.')):
                node = node[part]
            node[leaf] = value
        with DefaultScope.overwrite_default_scope('mmseg'):
            return MODELS.build(model_cfg)

    with pytest.raises(ValueError, match=r"PromptRefinementLoss: "
                       r"loss_weight='abc'"):
        build(**{'refine_loss.loss_weight': 'abc'})
    with pytest.raises(ValueError, match=r"SegmentLabelMatchingLoss: "
                       r"bg_weight=-1"):
        build(**{'match_loss.bg_weight': -1})
    with pytest.raises(ValueError, match=r"test_cfg.bg_threshold='high'"):
        build(**{'test_cfg': dict(bg_threshold='high')})
    with pytest.raises(ValueError, match=r"mask_eps: refine='0.1'"):
        build(mask_eps=dict(refine='0.1'))
    with pytest.raises(ValueError, match=r"mask_eps must be > 0 .*'match': "
                       r"0"):
        build(mask_eps=dict(match=0))
    with pytest.raises(ValueError, match=r"text_template='a photo'"):
        build(text_template='a photo')
    # a class list shorter than the dataset's fails before iteration 0
    short = tiny_cfg(world, tmp_path / 'short')
    short.model.class_names = short.model.class_names[:4]
    short.model.cam_head.num_classes = 4
    with pytest.raises(ValueError, match=r'model.class_names has 4 names '
                       r'.* the training dataset has 5 foreground classes'):
        train(short)


# ------------------------------ 8. ground truth under any name is refused
def test_export_refuses_any_folder_the_config_reads_masks_from(
        world, tmp_path):
    cfg = tiny_cfg(world, tmp_path / 'work')
    DATASETS.build(cfg.train_dataloader.dataset)
    checkpoint = save_weights(cfg, tmp_path / 'a.pth', seed=1)
    # the labels read from a copy of the masks, a folder whose name is not
    # a VOC annotation folder's
    labels = tmp_path / 'labels'
    shutil.copytree(osp.join(world, 'SegmentationClass'), labels)
    for key in ('train_dataloader', 'val_dataloader'):
        cfg[key].dataset.label_seg_map_path = str(labels)
    with pytest.raises(ValueError, match='ground truth'):
        make_pseudo_labels(cfg, checkpoint, str(labels), split='val',
                           progress=False)


# ---------------------------- 9. a DeepLabV2 run without its pseudo masks
def test_missing_pseudo_masks_fail_when_the_dataset_is_built(world,
                                                            tmp_path):
    deeplab = Config.fromfile(str(REPO_ROOT / 'configs' / 'deeplabv2' /
                                  'deeplabv2_tiny_synthetic_pseudo.py'))
    dataset = copy.deepcopy(deeplab.train_dataloader.dataset)
    dataset.update(data_root=str(world), synthetic_world=dict(
        tiny_cfg(world).train_dataloader.dataset.synthetic_world))
    dataset.data_prefix.seg_map_path = str(tmp_path / 'no_such_folder')
    with pytest.raises(FileNotFoundError, match='no_such_folder.*does not '
                       'exist'):
        DATASETS.build(dataset)
    partial = tmp_path / 'partial'
    partial.mkdir()
    ids = open(osp.join(world, 'ImageSets/Segmentation/train.txt')).read(
    ).split()
    for img_id in ids[:10]:
        (partial / f'{img_id}.png').write_bytes(
            open(osp.join(world, 'SegmentationClass', f'{img_id}.png'),
                 'rb').read())
    dataset.data_prefix.seg_map_path = str(partial)
    with pytest.raises(FileNotFoundError,
                       match=rf"54 of 64 images .* no mask in {partial}.*"
                       rf"'{ids[10]}'"):
        DATASETS.build(dataset)


# -------------------------- 3 and 6. the pipeline: kills and edited configs
def _pipeline(work_dir, config, *extra):
    return load_tool('run_experiment').main(
        [config, '--work-dir', str(work_dir), '--quick', '--seed', '1',
         '--num-threads', '1', *extra])


@pytest.mark.float_compare
def test_pipeline_continues_a_killed_export_and_reruns_what_an_edit_changed(
        tmp_path, monkeypatch, capfd):
    config = tmp_path / 'edited.py'
    config.write_text(f"_base_ = ['{SYNTHETIC}']\n")
    work_dir = tmp_path / 'run'
    # a kill during the export of the match masks, after 5 of 16 PNGs
    import semples_mm.pseudo_labels.writer as writer
    save = writer.save_mask_png
    written = []

    def killed_after_five(mask, path):
        if 'pseudo_masks/match' in path and len(written) == 5:
            raise KeyboardInterrupt('killed during the export')
        save(mask, path)
        written.append(path) if 'pseudo_masks/match' in path else None

    monkeypatch.setattr(writer, 'save_mask_png', killed_after_five)
    with pytest.raises(KeyboardInterrupt):
        _pipeline(work_dir, str(config))
    monkeypatch.undo()
    semples_dir = work_dir / 'semples'
    checkpoints = {p: os.stat(semples_dir / p).st_mtime_ns
                   for p in os.listdir(semples_dir) if p.endswith('.pth')}
    assert len(read_masks(work_dir / 'pseudo_masks' / 'match')) == 5
    capfd.readouterr()
    summary = _pipeline(work_dir, str(config))
    log = capfd.readouterr().out
    assert 'step semples: skipped' in log  # no retraining
    assert {p: os.stat(semples_dir / p).st_mtime_ns
            for p in checkpoints} == checkpoints
    match = summary['steps']['export_match']['result']
    assert (match['num_written'], match['num_skipped']) == (11, 5)
    # the masks are the phase-end weights' own: as a fresh export of them
    fresh = make_pseudo_labels(
        str(work_dir / 'configs' / 'semples.py'),
        str(semples_dir / 'cam_network_after_match.pth'),
        str(tmp_path / 'fresh'), split='train', work_dir=str(tmp_path),
        progress=False, evaluate=False)
    assert fresh['weights'] == match['weights']
    assert changed_pixel_fraction(
        read_masks(work_dir / 'pseudo_masks' / 'match'),
        read_masks(tmp_path / 'fresh')) <= 1e-3

    # an edited written threshold: training stays, the exports and what
    # reads them run again; --no-rerun refuses, naming the change
    config.write_text(f"_base_ = ['{SYNTHETIC}']\n"
                      'pseudo_label_cfg = dict(bg_threshold=0.6)\n')
    with pytest.raises(InputsChanged, match=r'step export_cam: .*'
                       r'settings\.bg_threshold: 0\.45 -> 0\.6'):
        _pipeline(work_dir, str(config), '--no-rerun')
    capfd.readouterr()
    edited = _pipeline(work_dir, str(config))
    log = capfd.readouterr().out
    assert 'step semples: skipped' in log
    for step in ('export_cam', 'export_match', 'export_semples',
                 'deeplabv2_tiny_synthetic_pseudo_train',
                 'deeplabv2_tiny_synthetic_pseudo_test'):
        assert f'step {step}: inputs changed' in log or \
            f'step {step}: running' in log, step
    assert edited['pseudo_masks']['semples']['bg_threshold_written'] == 0.6
    written_ids = np.unique(np.concatenate([m.ravel() for m in read_masks(
        work_dir / 'pseudo_masks' / 'semples').values()]))
    assert written_ids.max() <= 5
    # changed phase lengths retrain from scratch (old outputs kept aside)
    config.write_text(f"_base_ = ['{SYNTHETIC}']\n"
                      'pseudo_label_cfg = dict(bg_threshold=0.6)\n'
                      'model = dict(prompt_learner=dict(length=8))\n')
    capfd.readouterr()
    _pipeline(work_dir, str(config))
    log = capfd.readouterr().out
    assert 'step semples: inputs changed (model.prompt_learner.length: 16 ' \
        '-> 8)' in log
    assert [p for p in os.listdir(work_dir) if p.startswith(
        'semples.stale-')]
