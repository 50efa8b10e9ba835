"""SemPLeS training through mmengine's Runner: all four phases with
validation at phase ends, per-phase learning rates and fresh optimizer
states (set by the model's own train_step), exact resume inside a phase,
the run-length check, and the shipped configs/semples/synthetic.py through
tools/train.py."""
import copy
import itertools
import json
import math
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmseg.registry import HOOKS, MODELS

import semples_mm  # noqa: F401  (registers)
from conftest import (REPO_ROOT, TEST_CONFIGS, TINY_GRAD_SUMS,
                      TINY_LOSS_SUMS, load_tool, make_tiny_world,
                      start_next_second)
from float_compare import assert_close_up_to_rounding

TINY = str(TEST_CONFIGS / 'tiny_semples.py')
# tiny_semples.py: cam 4, match 3, prompt 3, refine 3 iterations.
STARTS = dict(cam=0, match=4, prompt=7, refine=10)
LENGTHS = dict(cam=4, match=3, prompt=3, refine=3)
MAX_ITERS = 13
INITIAL_LR = dict(cam=1e-3, prompt=0.025)
LR_MULT = dict(cam=1.0, match=0.1, prompt=1.0, refine=0.1)
_run_ids = itertools.count()


def adam_steps(optimizer) -> int:
    """AdamW's step count (1 after the first step of a fresh state)."""
    states = list(optimizer.state.values())
    return int(states[0]['step']) if states else 0


@HOOKS.register_module(force=True)
class _PhaseRecorderHook(Hook):
    """Records after every iteration (whose train_step set them) the
    phase, the learning rates it trained with and each optimizer's step
    count."""
    priority = 'NORMAL'

    def __init__(self):
        self.records = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        model = runner.model
        self.records.append(dict(
            iter=runner.iter, phase=model.phase,
            lr={name: [g['lr'] for g in w.optimizer.param_groups]
                for name, w in runner.optim_wrapper.items()},
            initial_lr={name: [g.get('initial_lr')
                               for g in w.optimizer.param_groups]
                        for name, w in runner.optim_wrapper.items()},
            steps={name: adam_steps(w.optimizer)
                   for name, w in runner.optim_wrapper.items()}))


def tiny_cfg(work_dir, data_root, extra_hooks=(), resume=False):
    cfg = Config.fromfile(TINY)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(data_root)
    cfg.work_dir = str(work_dir)
    # Runners built in the same second would share one logger otherwise.
    cfg.experiment_name = f'tiny_semples_{next(_run_ids)}'
    cfg.custom_hooks = list(cfg.custom_hooks) + list(extra_hooks)
    cfg.resume = resume
    return cfg


def train(cfg):
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def killed_and_resumed(make_cfg, stop_iter):
    """Train ``make_cfg(resume=False)`` until it is killed after iteration
    ``stop_iter``, then ``make_cfg(resume=True)`` to the end."""
    cfg = make_cfg(False)
    cfg.custom_hooks.append(dict(type='StopAfterIterHook',
                                 stop_iter=stop_iter))
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    start_next_second()
    return train(make_cfg(True))


def read_logs(work_dir):
    return ''.join(p.read_text()
                   for p in sorted(work_dir.glob('*/*.log')))


def load_ckpt(path):
    return torch.load(path, map_location='cpu', weights_only=False)


@pytest.fixture(scope='module')
def world_root(tmp_path_factory):
    """The tiny config's synthetic world."""
    return make_tiny_world(tmp_path_factory.mktemp('semples_world') / 'world')


@pytest.fixture(scope='module')
def full_run(tmp_path_factory, world_root):
    """One uninterrupted tiny SemPLeS run, shared by the tests below."""
    work_dir = tmp_path_factory.mktemp('semples_full')
    runner = train(tiny_cfg(work_dir, world_root,
                            [dict(type='_PhaseRecorderHook')]))
    recorder = next(h for h in runner.hooks
                    if isinstance(h, _PhaseRecorderHook))
    return dict(work_dir=work_dir, records=recorder.records,
                log=read_logs(work_dir), model=runner.model)


def test_all_phases_run_and_validate_at_phase_ends(full_run):
    log, records = full_run['log'], full_run['records']
    assert [r['iter'] for r in records] == list(range(MAX_ITERS))
    assert [r['phase'] for r in records] == [
        p for p in STARTS for _ in range(LENGTHS[p])]
    for phase, start in STARTS.items():
        assert f'phase "{phase}" starts at iteration {start + 1}' in log
    # Validation right after cam and match end (and after refine, at the
    # end of training), none after prompt (not in validate_after).
    cam_val = log.index('validating the end of phase "cam"')
    match_val = log.index('validating the end of phase "match"')
    assert log.index(f'Iter(train) [ 4/{MAX_ITERS}]') < cam_val < \
        log.index(f'Iter(train) [ 5/{MAX_ITERS}]')
    assert log.index(f'Iter(train) [ 7/{MAX_ITERS}]') < match_val < \
        log.index(f'Iter(train) [ 8/{MAX_ITERS}]')
    assert 'validating the end of phase "prompt"' not in log
    assert 'validating the end of phase "refine"' not in log
    assert log.count('pseudo/mIoU: ') == 3
    # Each iteration's log line shows its phase's losses and no other
    # phase's (the message hub would keep printing their last values).
    phase_losses = dict(cam={'loss_cls'}, match={'loss_match'},
                        prompt={'loss_prompt'},
                        refine={'loss_match', 'loss_refine'})
    all_losses = set().union(*phase_losses.values())
    lines = re.findall(rf'Iter\(train\) \[ *(\d+)/{MAX_ITERS}\](.*)', log)
    assert len(lines) == MAX_ITERS
    for number, line in lines:
        phase = records[int(number) - 1]['phase']
        shown = {name for name in all_losses if f' {name}: ' in line}
        assert shown == phase_losses[phase], (number, line)

    work_dir = full_run['work_dir']
    ckpt = load_ckpt(work_dir / f'iter_{MAX_ITERS}.pth')
    assert ckpt['meta']['iter'] == MAX_ITERS
    assert full_run['model'].phase == 'refine'
    # Checkpoints after cam carry the end-of-cam weights refine restarts
    # from, as state-dict tensors.
    at_4 = load_ckpt(work_dir / 'iter_4.pth')['state_dict']  # cam's end
    assert not any(k.startswith('cam_snapshot.') for k in at_4)
    end_of_cam = {k: v for k, v in at_4.items()
                  if k.startswith(('backbone.', 'cam_head.'))}
    for name in ('iter_6.pth', 'iter_8.pth', f'iter_{MAX_ITERS}.pth'):
        state = load_ckpt(work_dir / name)['state_dict']
        assert sum(k.startswith('cam_snapshot.') for k in state) == len(
            end_of_cam)
        for key, value in end_of_cam.items():
            torch.testing.assert_close(
                state['cam_snapshot.' + key.replace('.', '/')], value,
                rtol=0, atol=0, msg=(name, key))


def test_learning_rate_and_fresh_optimizer_per_phase(full_run):
    for record in full_run['records']:
        i, phase = record['iter'], record['phase']
        active = 'prompt' if phase == 'prompt' else 'cam'
        # initial_lr is the config's lr, kept in the optimizer state.
        assert record['initial_lr'][active] == [INITIAL_LR[active]]
        progress = (i - STARTS[phase]) / LENGTHS[phase]
        expected = INITIAL_LR[active] * LR_MULT[phase] * 0.5 * (
            1 + math.cos(math.pi * progress))
        assert record['lr'][active] == [pytest.approx(expected, rel=1e-9)], \
            record
        # Each phase starts its optimizer afresh: AdamW counts its steps
        # from 1 again (the cam optimizer had 4 and 3 steps behind it when
        # match and refine started).
        assert record['steps'][active] == i - STARTS[phase] + 1, record
    by_iter = {r['iter']: r for r in full_run['records']}
    assert by_iter[3]['steps']['cam'] == 4
    assert by_iter[6]['steps']['cam'] == 3


def test_logged_learning_rate_is_the_one_used(full_run):
    """The log line of iteration i shows the learning rates iteration i
    trained with (mmengine's RuntimeInfoHook reads them before the step,
    when the model has not set them yet; the model logs them again)."""
    logged = {
        int(m.group(1)): dict(cam=float(m.group(2)), prompt=float(m.group(3)))
        for m in re.finditer(
            r'Iter\(train\) \[\s*(\d+)/\d+\]\s+cam\.lr: (\S+)\s+'
            r'prompt\.lr: (\S+)', full_run['log'])}
    assert sorted(logged) == list(range(1, MAX_ITERS + 1))
    for record in full_run['records']:
        for name in ('cam', 'prompt'):
            assert logged[record['iter'] + 1][name] == pytest.approx(
                record['lr'][name][0], rel=1e-3), (record['iter'] + 1, name)


@pytest.mark.float_compare
def test_resume_inside_prompt_and_refine_is_exact(tmp_path, world_root,
                                                  full_run):
    """Killed after iteration 4 (the end of cam, validated and saved), 8
    (inside prompt) and 12 (inside refine), resumed each time: the end
    state equals the uninterrupted run's exactly."""
    work_dir = tmp_path / 'stopped'
    for stop_iter in (4, 8, 12):
        cfg = tiny_cfg(work_dir, world_root,
                       [dict(type='StopAfterIterHook', stop_iter=stop_iter)],
                       resume=stop_iter != 4)
        start_next_second()
        with pytest.raises(KeyboardInterrupt):
            train(cfg)
        assert (work_dir / f'iter_{stop_iter}.pth').exists()
        assert not (work_dir / f'iter_{stop_iter + 2}.pth').exists()
    start_next_second()
    runner = train(tiny_cfg(work_dir, world_root, resume=True))
    assert runner.model.phase == 'refine'
    log = read_logs(work_dir)
    assert log.count('resumed') >= 3
    # Resuming inside a phase does not restart it (no second reset); the
    # phase-end validation is not repeated after a resume.
    assert log.count('validating the end of phase "cam"') == 1
    assert log.count('phase "match" starts') == 1
    assert log.count('phase "prompt" starts') == 1
    assert log.count('phase "refine" starts') == 1

    full = load_ckpt(full_run['work_dir'] / f'iter_{MAX_ITERS}.pth')
    resumed = load_ckpt(work_dir / f'iter_{MAX_ITERS}.pth')
    assert resumed['meta']['iter'] == MAX_ITERS
    a, b = full['state_dict'], resumed['state_dict']
    assert a.keys() == b.keys()
    assert any(key.startswith('cam_snapshot.') for key in a)
    for key in a:  # the same computation, resumed: bit for bit
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    torch.testing.assert_close(full['optimizer'], resumed['optimizer'],
                               rtol=0, atol=0)


def test_max_iters_must_match_the_phases(tmp_path, world_root):
    cfg = tiny_cfg(tmp_path, world_root)
    cfg.train_cfg.max_iters = MAX_ITERS - 1
    with pytest.raises(ValueError, match=r'train_cfg.max_iters=12 but '
                       r'model.phases add up to 13'):
        train(cfg)


@HOOKS.register_module(force=True)
class _CountIterationsHook(Hook):
    def __init__(self):
        self.trained = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.trained += 1


def test_a_plain_iteration_loop_of_another_length_fails_first(
        tmp_path, world_root):
    """Without PhasedTrainLoop, a run length other than the phases' fails
    before any step with a message; of the same length, the model still
    switches its phases itself."""
    cfg = tiny_cfg(tmp_path / 'short', world_root,
                   [dict(type='_CountIterationsHook')])
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=MAX_ITERS - 3,
                         val_interval=100)
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match=r'the run is 10 iterations long '
                       r"but model.phases add up to 13; use train_cfg=dict"
                       r"\(type='PhasedTrainLoop'\)"):
        runner.train()
    assert next(h for h in runner.hooks
                if isinstance(h, _CountIterationsHook)).trained == 0
    cfg = tiny_cfg(tmp_path / 'plain', world_root,
                   [dict(type='_PhaseRecorderHook')])
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=MAX_ITERS,
                         val_interval=100)
    runner = train(cfg)
    records = next(h for h in runner.hooks
                   if isinstance(h, _PhaseRecorderHook)).records
    assert [r['phase'] for r in records] == [
        p for p in STARTS for _ in range(LENGTHS[p])]


def test_shipped_synthetic_config_trains_with_tools_train(tmp_path):
    """configs/semples/synthetic.py, shrunk from the command line, through
    tools/train.py: every phase runs with the shipped small CLIP."""
    root = tmp_path / 'world'
    options = [f'model.phases.{i}.iters=2' for i in range(4)]
    options += ['default_hooks.logger.interval=1',
                'default_hooks.checkpoint.interval=8']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [f'{loader}.dataset.data_root={root}',
                    f'{loader}.dataset.synthetic_world.num_train=64',
                    f'{loader}.dataset.synthetic_world.num_val=16',
                    f'{loader}.dataset.synthetic_world.progress=False',
                    f'{loader}.num_workers=0',
                    f'{loader}.persistent_workers=False']
    options += ['train_dataloader.batch_size=4', 'val_dataloader.batch_size=4']
    work_dir = tmp_path / 'work'
    load_tool('train').main([
        str(REPO_ROOT / 'configs' / 'semples' / 'synthetic.py'),
        '--work-dir', str(work_dir), '--cfg-options', *options])

    log = read_logs(work_dir)
    for phase, start in dict(cam=1, match=3, prompt=5, refine=7).items():
        assert f'phase "{phase}" starts at iteration {start}' in log
    assert 'pseudo/mIoU' in log
    ckpt = load_ckpt(work_dir / 'iter_8.pth')
    assert ckpt['meta']['iter'] == 8
    # The real config path: the CLIP in the checkpoint is the shipped one.
    cfg = Config.fromfile(REPO_ROOT / 'configs' / 'semples' / 'synthetic.py')
    shipped = MODELS.build(copy.deepcopy(cfg.model.clip)).state_dict()
    assert cfg.model.clip.pretrained == \
        'semples_mm://assets/synthetic_clip.safetensors'
    for key, value in shipped.items():
        torch.testing.assert_close(ckpt['state_dict'][f'clip.{key}'], value,
                                   rtol=0, atol=0, msg=key)


def test_phase_log_hook_forgets_outputs_of_earlier_phases():
    """Any key the model logged before (not only losses) leaves the message
    hub once an iteration stops producing it, and every model key at a
    phase start (its window restarts); hook-written keys stay."""
    from types import SimpleNamespace

    from mmengine.logging import MessageHub

    from semples_mm.models.segmentors import PhaseSchedule
    hook = HOOKS.build(dict(type='PhaseLogHook'))
    hub = MessageHub.get_instance('phase_hook_forget_test')
    schedule = PhaseSchedule([dict(name='prompt', iters=2, optimizer='p'),
                              dict(name='refine', iters=2, optimizer='c')])
    runner = SimpleNamespace(message_hub=hub, iter=0,
                             model=SimpleNamespace(schedule=schedule))

    def iteration(i, outputs):
        runner.iter = i
        hook.after_train_iter(runner, 0, outputs=outputs)
        for key, value in outputs.items():  # as RuntimeInfoHook, after it
            hub.update_scalar(f'train/{key}', value)

    iteration(0, {'loss': 1.0, 'loss_prompt': 1.0,
                  'prompt_cache_hit_rate': 0.5})
    hub.update_scalar('train/time', 0.1)
    hub.update_scalar('train/loss_cls', 0.3)  # e.g. from a resumed checkpoint
    iteration(1, {'loss': 2.0, 'loss_prompt': 2.0})
    assert set(hub.log_scalars) == {'train/loss', 'train/loss_prompt',
                                    'train/time'}
    assert hub.get_scalar('train/loss').mean() == 1.5  # within the phase
    iteration(2, {'loss': 5.0, 'loss_match': 5.0})  # refine starts
    assert set(hub.log_scalars) == {'train/loss', 'train/loss_match',
                                    'train/time'}
    assert hub.get_scalar('train/loss').mean() == 5.0  # window restarted


def _with_bank(cfg, pixel_free=False):
    """The prompt phase's crop features from a FixedViewBankCropFeatures
    over the training list with the val pipeline (the tiny world's images
    already have one size; flips as RandomFlip). ``pixel_free``: the prompt
    phase also reads its own dataloader, which loads no pixels (batch 8)."""
    dataset = copy.deepcopy(cfg.train_dataloader.dataset)
    dataset.pipeline = cfg.val_pipeline
    cfg.model.prompt_crop_features = dict(
        type='FixedViewBankCropFeatures', flip=True,
        dataloader=dict(batch_size=8, num_workers=0, dataset=dataset))
    if pixel_free:
        cfg.train_cfg.phase_dataloaders = dict(prompt=dict(
            batch_size=8, dataset=dict(pipeline=[
                dict(type='RandomFlipFlag', prob=0.5),
                dict(type='PackWSSSInputs')])))
    return cfg


@HOOKS.register_module(force=True)
class _BatchRecorderHook(Hook):
    """Records each iteration's phase, batch size and whether its batch
    holds pixels."""
    priority = 'NORMAL'

    def __init__(self):
        self.records = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.records.append((runner.model.phase,
                             len(data_batch['data_samples']),
                             'inputs' in data_batch))


@pytest.mark.float_compare
def test_prompt_feature_bank_trains_like_on_the_fly_features(
        tmp_path, world_root, full_run):
    """The tiny pipeline only flips, so features of the fixed views are the
    training views' own: the prompts learnt from the bank equal the
    uninterrupted run's (up to rounding), the bank is built once and
    dropped when the phase ends."""
    runner = train(_with_bank(tiny_cfg(tmp_path / 'bank', world_root)))
    log = read_logs(tmp_path / 'bank')
    assert log.count('FixedViewBankCropFeatures: crop features of 64 images '
                     'x 2 view(s)') == 1
    assert len(runner.model.crop_features) == 0  # reset after prompt
    ours = load_ckpt(tmp_path / 'bank' / f'iter_{MAX_ITERS}.pth')
    full = load_ckpt(full_run['work_dir'] / f'iter_{MAX_ITERS}.pth')
    key = 'prompt_learner.ctx'
    assert not torch.equal(ours['state_dict'][key],
                           load_ckpt(tmp_path / 'bank' / 'iter_6.pth')[
                               'state_dict'][key])  # the prompts did learn
    # The bank's features come from other batches than the training's: each
    # of the 3 prompt steps starts from a gradient that rounds within
    # TINY_GRAD_SUMS, and AdamW's step (the gradient over its own size)
    # keeps that relative error.
    assert_close_up_to_rounding(ours['state_dict'][key],
                                full['state_dict'][key], terms=576,
                                depth=3 * TINY_GRAD_SUMS['depth'])


@pytest.mark.float_compare
def test_pixel_free_prompt_phase_resumes_exactly(tmp_path, world_root):
    """With the bank, the prompt phase reads its own dataloader (batch 8)
    whose pipeline loads no pixels; a run killed inside that phase and
    resumed ends exactly as an uninterrupted one (the bank is rebuilt, each
    dataloader resumes at its own position)."""
    recorded = tiny_cfg(tmp_path / 'full', world_root,
                        [dict(type='_BatchRecorderHook')])
    runner = train(_with_bank(recorded, pixel_free=True))
    records = next(h for h in runner.hooks
                   if isinstance(h, _BatchRecorderHook)).records
    assert [r for r in records if r[0] == 'prompt'] == [
        ('prompt', 8, False)] * LENGTHS['prompt']
    assert all(size == 4 and pixels for phase, size, pixels in records
               if phase != 'prompt')
    stopped = tmp_path / 'stopped'
    killed_and_resumed(lambda resume: _with_bank(
        tiny_cfg(stopped, world_root, resume=resume), pixel_free=True), 8)
    assert read_logs(stopped).count('FixedViewBankCropFeatures: crop '
                                    'features of 64 images') == 2
    full = load_ckpt(tmp_path / 'full' / f'iter_{MAX_ITERS}.pth')
    resumed = load_ckpt(stopped / f'iter_{MAX_ITERS}.pth')['state_dict']
    for name in ('prompt_learner.ctx', 'cam_head.classifier.weight'):
        torch.testing.assert_close(resumed[name], full['state_dict'][name],
                                   rtol=0, atol=0, msg=name)


@pytest.mark.float_compare
def test_prompt_loss_reads_the_bank(world_root, full_run):
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DefaultScope
    from mmseg.registry import DATASETS
    cfg = _with_bank(tiny_cfg(world_root.parent / 'unused', world_root))
    with DefaultScope.overwrite_default_scope('mmseg'):
        banked = MODELS.build(cfg.model)
    banked.load_state_dict(full_run['model'].state_dict())
    plain = copy.deepcopy(full_run['model'])
    for model in (banked, plain):
        model.set_phase('prompt')
    dataset = DATASETS.build(banked.crop_features.dataloader_cfg['dataset'])
    data = banked.data_preprocessor(
        pseudo_collate([dataset[i] for i in range(6)]), False)
    inputs, samples = data['inputs'], data['data_samples']
    with torch.no_grad():
        on_the_fly = plain.loss(inputs, samples)['loss_prompt']
        from_bank = banked.loss(inputs, samples)['loss_prompt']
        assert len(banked.crop_features) == 2 * 64
        assert_close_up_to_rounding(from_bank, on_the_fly, **TINY_LOSS_SUMS)
        # The loss is computed from the bank, not from the pixels, which a
        # pixel-free prompt phase does not even load.
        assert torch.equal(banked.loss(inputs * 0, samples)['loss_prompt'],
                           from_bank)
        assert torch.equal(banked.loss(None, samples)['loss_prompt'],
                           from_bank)
        with pytest.raises(ValueError, match='needs the batch images'):
            plain.loss(None, samples)
        samples[0].set_metainfo(dict(img_path='elsewhere.png'))
        with pytest.raises(KeyError, match='no view'):
            banked.loss(inputs, samples)


class _ScriptedScores:
    """CAM mIoU by the iteration it is asked at (stands in for scoring the
    split, so the test knows which weights are best)."""

    def __init__(self, scores):
        self.scores = scores
        self.asked = []

    def __call__(self, runner):  # a callable attribute is not bound
        self.asked.append(runner.iter + 1)
        return self.scores[runner.iter + 1]


@pytest.mark.float_compare
def test_best_cam_selection_restores_the_best_and_survives_a_resume(
        tmp_path, world_root, monkeypatch):
    """In match (iterations 5-7) the scores 0.5, 0.9, 0.7: the phase ends
    with iteration 6's weights, which the prompt phase starts from; a run
    killed after iteration 6 and resumed ends exactly the same."""
    from semples_mm.engine.hooks import BestCAMSelectionHook
    scripted = _ScriptedScores({5: 0.5, 6: 0.9, 7: 0.7})
    monkeypatch.setattr(BestCAMSelectionHook, '_score_split', scripted)
    selection = [dict(type='BestCAMSelectionHook', phases=('match', ),
                      interval=1)]
    runner = train(tiny_cfg(tmp_path / 'full', world_root, selection))
    assert scripted.asked == [5, 6, 7]
    record = json.load(open(tmp_path / 'full' / 'cam_selection.json'))
    assert record['phases']['match']['best_iter'] == 6
    assert record['phases']['match']['scores'] == {
        '5': 0.5, '6': 0.9, '7': 0.7}
    at_6 = load_ckpt(tmp_path / 'full' / 'iter_6.pth')['state_dict']
    best = torch.load(tmp_path / 'full' / 'best_cam_match.pth',
                      weights_only=True)
    key = 'cam_head.classifier.weight'
    torch.testing.assert_close(best[key], at_6[key], rtol=0, atol=0)
    # the prompt phase (no CAM training) kept the restored weights
    at_10 = load_ckpt(tmp_path / 'full' / 'iter_10.pth')['state_dict']
    torch.testing.assert_close(at_10[key], at_6[key], rtol=0, atol=0)
    assert 'match ends with the weights of iteration 6' in read_logs(
        tmp_path / 'full')
    full = load_ckpt(tmp_path / 'full' / f'iter_{MAX_ITERS}.pth')

    stopped = tmp_path / 'stopped'
    killed_and_resumed(lambda resume: tiny_cfg(
        stopped, world_root, selection, resume=resume), 6)
    resumed = load_ckpt(stopped / f'iter_{MAX_ITERS}.pth')
    assert resumed['cam_selection']['match']['best_iter'] == 6
    for name in ('prompt_learner.ctx', key):
        torch.testing.assert_close(resumed['state_dict'][name],
                                   full['state_dict'][name], rtol=0, atol=0,
                                   msg=name)
    assert runner.model.phase == 'refine'


@pytest.mark.float_compare
def test_a_resume_restores_the_best_as_of_its_checkpoint(
        tmp_path, world_root, monkeypatch):
    """Killed after iteration 7 found a new best, after the last checkpoint
    (iteration 6, best 6): the resume from 6 must not take the newer best
    (whose replay here scores lower) for iteration 6's."""
    from semples_mm.engine.hooks import BestCAMSelectionHook
    monkeypatch.setattr(BestCAMSelectionHook, '_score_split',
                        _ScriptedScores({5: 0.5, 6: 0.6, 7: 0.9}))
    selection = [dict(type='BestCAMSelectionHook', phases=('match', ),
                      interval=1)]
    work_dir = tmp_path / 'run'
    cfg = tiny_cfg(work_dir, world_root, selection)
    cfg.custom_hooks.append(dict(type='StopAfterIterHook', stop_iter=7))
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    assert not (work_dir / 'iter_7.pth').exists()  # checkpoints every 2
    at_6 = load_ckpt(work_dir / 'iter_6.pth')
    assert at_6['cam_selection']['match']['best_iter'] == 6
    # the replayed iteration 7 scores below 6 this time
    monkeypatch.setattr(BestCAMSelectionHook, '_score_split',
                        _ScriptedScores({7: 0.4}))
    start_next_second()
    train(tiny_cfg(work_dir, world_root, selection, resume=True))
    at_8 = load_ckpt(work_dir / 'iter_8.pth')  # prompt: the CAMs rest
    assert at_8['cam_selection']['match']['best_iter'] == 6
    for key, value in at_6['state_dict'].items():
        if key.startswith(('backbone.', 'cam_head.')):
            torch.testing.assert_close(at_8['state_dict'][key], value,
                                       rtol=0, atol=0, msg=key)


def test_best_cam_selection_scores_the_split_with_the_config_metric(
        tmp_path, world_root):
    """Without a scripted score: the split (val_dataloader) is scored with
    the config's PseudoMaskMetric once per epoch of the phase's data (64
    images at batch 4: 16 iterations, more than match's 3) and at the
    phase end."""
    cfg = tiny_cfg(tmp_path, world_root,
                   [dict(type='BestCAMSelectionHook', phases=('match', ))])
    train(cfg)
    record = json.load(open(tmp_path / 'cam_selection.json'))
    assert record['metric_key'] == 'pseudo/mIoU'
    scores = record['phases']['match']['scores']
    assert list(scores) == ['7']
    assert 0 < scores['7'] < 100
    assert record['phases']['match']['best_iter'] == 7
    with pytest.raises(ValueError, match=r"no phase \['warmup'\]"):
        train(tiny_cfg(tmp_path / 'bad', world_root, [dict(
            type='BestCAMSelectionHook', phases=('warmup', ))]))


def test_best_cam_selection_epoch_drops_the_last_partial_batch():
    """One epoch is N // batch iterations, as the authors' loaders (and the
    VOC phase lengths, 60 x (10582 // 64) = 9,900) count it: 10,582 images
    at batch 64 give 165 (ceil would give 166), the phase's own batch size
    wins over the training loader's."""
    from types import SimpleNamespace

    from semples_mm.engine.hooks.cam_selection_hook import \
        BestCAMSelectionHook
    runner = SimpleNamespace(
        train_dataloader=SimpleNamespace(batch_size=64,
                                         dataset=list(range(10582))),
        train_loop=SimpleNamespace(
            phase_dataloader_cfgs=dict(prompt=dict(batch_size=128))))
    assert BestCAMSelectionHook._epoch(runner, 'match') == 165
    assert BestCAMSelectionHook._epoch(runner, 'prompt') == 82
    runner.train_dataloader.dataset = list(range(10))
    assert BestCAMSelectionHook._epoch(runner, 'match') == 1
