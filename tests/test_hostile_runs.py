"""What a hostile run broke (issue 28): a kill followed by an edit, outputs
damaged on disk, typos in settings, private files, leftovers of killed
writers. Each test reproduces one failure of a probe with real signals
and bad inputs on a quick pipeline (a 16-image world, 13 iterations).

Most tests damage a copy of one finished run (``finished_run``), which is
put back as it was after each test."""
import copy
import errno
import json
import multiprocessing
import os
import os.path as osp
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope
from mmseg.registry import DATASETS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS

import semples_mm  # noqa: F401  (registers)
from conftest import REPO_ROOT, TEST_CONFIGS, load_tool
from semples_mm.apis import train
from semples_mm.datasets.synthetic import generate_synthetic_world
from semples_experiments.runner.record import InputsChanged, ExperimentRecord
from semples_mm.pseudo_labels import export_settings
from semples_mm.pseudo_labels.manifest import read_manifest
from semples_mm.utils.checkpoints import (AtomicLocalBackend,
                                          read_state_dict)
from semples_mm.utils.fingerprint import state_fingerprint
from semples_mm.utils.mask_png import read_mask, save_mask_png
from semples_mm.utils.read_back import DamagedFile
from semples_mm.utils.work_dir_lock import LOCK_NAME, WorkDirLock

SYNTHETIC = str(REPO_ROOT / 'configs' / 'semples' / 'synthetic.py')
TEST_MODULES = REPO_ROOT / 'tests' / 'data' / 'modules'
sys.path.insert(0, str(TEST_MODULES))  # the configs import sigkill_hook
# A config as a user edits it: a checkpoint every iteration, so that a kill
# leaves some to resume from; the kill hook importable. The killed run has
# another learning rate and a SIGKILL after iteration 9 of 13 (inside
# prompt), in default_hooks, which are not an input of the training.
CLEAN = f'''_base_ = [{SYNTHETIC!r}]
custom_imports = dict(imports=['semples_mm', 'sigkill_hook'],
                      allow_failed_imports=False)
default_hooks = dict(checkpoint=dict(interval=1))
'''
KILLED = CLEAN.replace(
    'interval=1)', 'interval=1),\n    sigkill=dict('
    "type='SigkillAfterIterHook', stop_iter=9)") + \
    'optim_wrapper = dict(cam=dict(optimizer=dict(lr=5e-3)))\n'
QUICK = ['--quick', '--seed', '1', '--num-threads', '1']
LABELS = ('cam', 'match', 'semples')
UMASK = 0o027  # of the finished run: its files must be 0640
# SHORT_NAMES: runs in folders with short names. mmengine writes the config,
# formatted by yapf, into every checkpoint; with a data_root of over ~70
# characters yapf's line splitting takes about a second a save (measured
# here: 0.09 s at 62 characters, 1.1 s at 82), a checkpoint every
# iteration then triples a quick training's time.


def _pipeline(work_dir, config, *extra):
    # a logger of its own: the pipeline's lines before its first runner go
    # to the newest logger, whose stream would be another test's capture
    MMLogger.get_instance(f'hostile_{time.time_ns()}', log_level='INFO')
    return load_tool('run_experiment').main(
        [str(config), '--work-dir', str(work_dir), *QUICK, *extra])


def _skipped(summary, step):
    return summary['steps'][step]['skipped_in_last_run']


@pytest.fixture(scope='module')
def pristine(tmp_path_factory):
    """A finished quick pipeline of CLEAN (run under UMASK), and a copy."""
    root = tmp_path_factory.mktemp('h')  # short: see SHORT_NAMES
    config = root / 'clean.py'
    config.write_text(CLEAN)
    work_dir = root / 'run'
    umask = os.umask(UMASK)
    try:
        summary = _pipeline(work_dir, config)
    finally:
        os.umask(umask)
    shutil.copytree(work_dir, root / 'backup')  # times kept: copy2
    return dict(config=config, work_dir=work_dir, summary=summary,
                backup=root / 'backup')


@pytest.fixture
def finished_run(pristine):
    """The finished run, to damage; put back afterwards."""
    yield pristine
    shutil.rmtree(pristine['work_dir'])
    shutil.copytree(pristine['backup'], pristine['work_dir'])


def _weights(summary, label):
    return summary['steps'][f'export_{label}']['result']['weights']


# ------------------------------------------ 1. a kill, an edit, a rerun
def test_a_killed_training_whose_config_was_edited_starts_afresh(
        pristine, tmp_path_factory, capfd):
    """SIGKILLed inside training, the lr edited, rerun: the result is a
    clean run's of the edited config, not the old run continued under
    the new settings."""
    tmp_path = tmp_path_factory.mktemp('k')  # short: see SHORT_NAMES
    config = tmp_path / 'config.py'
    config.write_text(KILLED)
    work_dir = tmp_path / 'run'
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO_ROOT), str(TEST_MODULES), os.environ.get('PYTHONPATH',
                                                           '')]))
    killed = subprocess.run(
        [sys.executable, 'tools/run_experiment.py', str(config), '--work-dir',
         str(work_dir), *QUICK], cwd=REPO_ROOT, env=env,
        capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    semples = json.loads((work_dir / 'summary.json').read_text())[
        'steps']['semples']
    assert semples['status'] == 'running'  # its inputs recorded at start
    assert (work_dir / 'semples' / 'iter_9.pth').exists()

    config.write_text(CLEAN)  # the edit: the config's lr again, no kill
    with pytest.raises(InputsChanged, match=r'step semples: its inputs '
                       r'changed \(optim_wrapper\.cam\.optimizer\.lr: 0\.005 '
                       r'-> 0\.001\) since it started \(it was killed'):
        _pipeline(work_dir, config, '--no-rerun')
    capfd.readouterr()
    rerun = _pipeline(work_dir, config)
    log = capfd.readouterr().out
    assert 'step semples: inputs changed (optim_wrapper.cam.optimizer.lr: ' \
        '0.005 -> 0.001) since it started' in log
    assert 'resumed' not in log
    assert [p for p in os.listdir(work_dir) if p.startswith(
        'semples.stale-')]
    # the same computation as the clean run (same batches, one thread):
    # the same weights at every phase end, bit for bit, and the same scores
    for label in LABELS:
        assert _weights(rerun, label) == _weights(pristine['summary'], label)
        assert rerun['pseudo_masks'][label]['mIoU'] == \
            pristine['summary']['pseudo_masks'][label]['mIoU']


# ------------------------------------- 2. a typo in a settings dict
def test_a_typo_in_a_settings_dict_fails_at_build_naming_it(tmp_path):
    model = Config.fromfile(str(TEST_CONFIGS / 'tiny_semples.py')).model
    model.test_cfg = dict(bg_treshold=0.6)
    with pytest.raises(KeyError, match=r"model\.test_cfg: unknown key\(s\) "
                       r"\['bg_treshold'\] \(did you mean 'bg_threshold'\?\)"):
        with DefaultScope.overwrite_default_scope('mmseg'):
            MODELS.build(model)
    # in pseudo_label_cfg: refused before anything is trained
    config = tmp_path / 'typo.py'
    config.write_text(CLEAN + 'pseudo_label_cfg = dict(bg_treshold=0.6)\n')
    with pytest.raises(KeyError, match=r"pseudo_label_cfg: unknown key\(s\) "
                       r"\['bg_treshold'\] \(did you mean 'bg_threshold'"):
        _pipeline(tmp_path / 'run', config)
    assert not (tmp_path / 'run' / 'semples').exists()
    cfg = Config.fromfile(str(config))
    cfg.work_dir = str(tmp_path / 'train')
    with pytest.raises(KeyError, match='bg_treshold'):
        train(cfg)
    assert not list((tmp_path / 'train').glob('*.pth'))
    # CRF settings are checked with the CRF off too
    with pytest.raises(KeyError, match=r"crf_cfg \(dense CRF\): unknown "
                       r"key\(s\) \['iteration'\] \(did you mean "
                       r"'iterations'\?\)"):
        export_settings(dict(pseudo_label_cfg=dict(
            crf=False, crf_cfg=dict(iteration=5))))


# ----------------------------------- 3. a damaged mask of a finished export
def test_a_damaged_mask_of_a_finished_export_is_written_again(
        finished_run, capfd):
    masks = finished_run['work_dir'] / 'pseudo_masks' / 'semples'
    target = masks / 'train_00003.png'
    original = read_mask(str(target))
    os.truncate(target, 100)
    capfd.readouterr()
    summary = _pipeline(finished_run['work_dir'], finished_run['config'])
    log = capfd.readouterr().out
    assert re.search(r'train_00003\.png \(100 bytes, written with \d+',
                     log), log
    assert 'step export_semples: marked done, but its outputs are missing ' \
        'or broken' in log
    result = summary['steps']['export_semples']['result']
    assert (result['num_written'], result['num_skipped']) == (1, 15)
    # the same weights, batches and threads: the same mask
    np.testing.assert_array_equal(read_mask(str(target)), original)
    # the masks' digest is unchanged: DeepLabV2 stays
    assert _skipped(summary, 'deeplabv2_tiny_synthetic_pseudo_train')
    assert summary['pseudo_masks'] == finished_run['summary']['pseudo_masks']


# ---------------------------- 4. ground truth edited after a run
def test_edited_ground_truth_is_an_input_of_the_steps_that_read_it(
        finished_run):
    world = finished_run['summary']['data_root']
    mask = osp.join(world, 'SegmentationClass', 'train_00000.png')
    save_mask_png(np.zeros_like(read_mask(mask)), mask)  # all background
    with pytest.raises(InputsChanged, match=r'step semples: its inputs '
                       r'changed \(data\..*/SegmentationClass: '):
        _pipeline(finished_run['work_dir'], finished_run['config'],
                  '--no-rerun')


# ------------------------------- 5. a damaged phase-end checkpoint
def test_a_damaged_phase_end_checkpoint_sends_training_back_before_it(
        finished_run, capfd):
    semples = finished_run['work_dir'] / 'semples'
    match = semples / 'cam_network_after_match.pth'
    os.truncate(match, 1000)
    os.remove(semples / 'cam_network_after_refine.pth')
    capfd.readouterr()
    summary = _pipeline(finished_run['work_dir'], finished_run['config'])
    log = capfd.readouterr().out
    assert f'{match}: it does not load (' in log
    assert "the training goes back to before the end of 'match' " \
        '(iteration 7)' in log
    assert not _skipped(summary, 'semples')
    # trained again from scratch (the run kept iterations 12 and 13 only),
    # as the first time: the same weights, so the exports stay
    assert state_fingerprint(read_state_dict(str(match))) == \
        _weights(finished_run['summary'], 'match')
    for label in LABELS:
        assert _skipped(summary, f'export_{label}'), label
        assert _weights(summary, label) == \
            _weights(finished_run['summary'], label)


# ------------------------------------------ 6. an empty export manifest
def test_an_empty_export_manifest_is_named_and_the_export_runs_again(
        finished_run):
    folder = finished_run['work_dir'] / 'pseudo_masks' / 'cam'
    (folder / '.export.json').write_bytes(b'')
    with pytest.raises(DamagedFile, match=re.escape(
            f'{folder}/.export.json cannot be read back: it is empty (0 '
            'bytes).') + '.*overwrite'):
        read_manifest(str(folder))
    summary = _pipeline(finished_run['work_dir'], finished_run['config'])
    assert summary['steps']['export_cam']['result']['num_written'] == 16
    assert read_manifest(str(folder))['complete'] is True
    assert summary['pseudo_masks'] == finished_run['summary']['pseudo_masks']
    assert _skipped(summary, 'deeplabv2_tiny_synthetic_pseudo_train')


# ------------------- 7. a truncated ground-truth mask while labels derive
def test_a_truncated_ground_truth_mask_is_named(pristine, tmp_path):
    world = tmp_path / 'world'
    shutil.copytree(pristine['summary']['data_root'], world)
    mask = world / 'SegmentationClass' / 'train_00005.png'
    os.truncate(mask, 100)
    dataset = Config.fromfile(str(pristine['work_dir'] / 'configs' /
                                  'semples.py')).train_dataloader.dataset
    dataset.data_root = str(world)
    with pytest.raises(ValueError, match=re.escape(f'mask {mask} cannot be '
                                                   'decoded') +
                       r'.*damaged or truncated.*Restore it'):
        DATASETS.build(dataset)


# ------------------------- 8. an optimizer setting of the wrong type
def test_an_optimizer_setting_of_the_wrong_type_is_named_at_build():
    optim_wrapper = copy.deepcopy(Config.fromfile(SYNTHETIC).optim_wrapper)
    constructor = optim_wrapper.pop('constructor')
    optim_wrapper.cam.optimizer.lr = '1e-3'

    def build(cfg):
        return OPTIM_WRAPPER_CONSTRUCTORS.build(
            dict(type=constructor, optim_wrapper_cfg=cfg))

    with pytest.raises(TypeError, match=r"optim_wrapper\.cam\.optimizer\."
                       r"lr='1e-3': need a number"):
        build(optim_wrapper)
    optim_wrapper.cam.optimizer.lr = 1e-3
    optim_wrapper.prompt.optimizer.betas = ('0.9', 0.999)
    with pytest.raises(TypeError, match=r"optim_wrapper\.prompt\.optimizer"
                       r"\.betas=\('0\.9', 0\.999\)"):
        build(optim_wrapper)


# ------------------------------------------- outputs readable by a group
def test_outputs_are_as_readable_as_the_umask_allows(pristine):
    work_dir = pristine['work_dir']
    outputs = [work_dir / 'summary.json',
               work_dir / 'semples' / 'iter_13.pth',
               work_dir / 'semples' / 'cam_network_after_cam.pth',
               work_dir / 'semples' / 'summary.json',
               work_dir / 'pseudo_masks' / 'cam' / '.export.json',
               work_dir / 'pseudo_masks' / 'cam' /
               'train_00000.png',
               work_dir / 'deeplabv2_tiny_synthetic_pseudo' / 'iter_6.pth']
    modes = {path.name: oct(os.stat(path).st_mode & 0o777)
             for path in outputs}
    assert modes == {path.name: oct(0o666 & ~UMASK) for path in outputs}


# --------------------------- leftovers of killed writers, a full disk
def _killed_inside(write, *patched):
    """Run ``write()`` in a forked process that SIGKILLs itself when it
    calls any of ``patched`` (module, name): a kill in mid-write."""
    def child():
        for module, name in patched:
            setattr(module, name,
                    lambda *args, **kwargs: os.kill(os.getpid(),
                                                    signal.SIGKILL))
        write()

    process = multiprocessing.get_context('fork').Process(target=child)
    process.start()
    process.join(60)
    assert process.exitcode == -signal.SIGKILL


def test_what_killed_writers_left_is_removed_at_the_next_start(
        finished_run, capfd, monkeypatch):
    work_dir = finished_run['work_dir']
    world = finished_run['summary']['data_root']
    # a kill during a checkpoint save (after the bytes, before the rename),
    # during a summary save, and during a world's generation
    _killed_inside(lambda: AtomicLocalBackend().put(
        b'x' * 1000, str(work_dir / 'semples' / 'iter_14.pth')),
        (os, 'fsync'))
    record = ExperimentRecord(str(work_dir / 'summary.json'))
    _killed_inside(record.save, (os, 'replace'))
    _killed_inside(lambda: generate_synthetic_world(
        world, seed=2, num_train=2, num_val=1, image_size=16,
        overwrite=True, progress=False), (os, 'rename'))
    leftovers = (
        list((work_dir / 'semples').glob('.tmp-iter_14.pth.*.part')) +
        list(work_dir.glob('.tmp-summary.json.*.part')) +
        list((work_dir / 'data').glob('.synthetic_world_seed1.*-*')))
    assert len(leftovers) == 4  # the world's new copy and its trash folder
    # a full disk while the summary is written leaves nothing behind
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(json, 'dump', disk_full)
    with pytest.raises(OSError, match='No space left'):
        record.save()
    monkeypatch.undo()
    assert len(list(work_dir.glob('.tmp-*'))) == 1  # the killed one's
    capfd.readouterr()
    summary = _pipeline(work_dir, finished_run['config'])
    log = capfd.readouterr().out
    assert not [p for p in leftovers if p.exists()]
    # the summary's by the work dir's lock, the others by the pipeline
    assert f'{work_dir}: removed 1 temporary file(s)' in log
    assert 'removed 3 temporary file(s) or folder(s)' in log
    assert all(_skipped(summary, step) for step in summary['steps'])


def test_an_empty_lock_file_is_reported_and_taken_over(tmp_path,
                                                       monkeypatch):
    work_dir = str(tmp_path / 'work')
    # killed after creating the lock file, before writing its name in it
    _killed_inside(lambda: WorkDirLock(work_dir, 'a killed run').acquire(),
                   (json, 'dump'))
    lock = osp.join(work_dir, LOCK_NAME)
    assert osp.getsize(lock) == 0
    # a live run writes its name within microseconds of creating the file
    monkeypatch.setattr('semples_mm.utils.work_dir_lock.EMPTY_LOCK_GRACE_S',
                        0.2, raising=False)
    logged = []
    monkeypatch.setattr('semples_mm.utils.work_dir_lock.print_log',
                        lambda message, **kwargs: logged.append(message))
    start = time.time()
    with WorkDirLock(work_dir, 'test'):
        assert json.load(open(lock))['pid'] == os.getpid()
    assert time.time() - start < 5
    assert 'taking over the empty or unreadable lock file' in logged[0]
