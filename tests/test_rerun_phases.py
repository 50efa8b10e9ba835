"""tools/analysis_tools/rerun_phases.py on a tiny SemPLeS run laid out as
the pipeline lays out a seed: a rerun starts from the run's state at the
phase start and changes only what it is told."""
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import semples_mm  # noqa: F401  (registers)
from conftest import TEST_CONFIGS, load_tool, make_tiny_world

TINY = str(TEST_CONFIGS / 'tiny_semples.py')


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    """A whole tiny SemPLeS run (13 iterations) in the pipeline's layout:
    ``configs/semples.py``, ``semples/iter_13.pth`` and the phase-end CAM
    networks."""
    root = tmp_path_factory.mktemp('rerun')
    make_tiny_world(root / 'world')
    cfg = Config.fromfile(TINY)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(root / 'world')
    cfg.work_dir = str(root / 'run' / 'semples')
    cfg.experiment_name = 'tiny_semples_rerun'
    cfg.custom_hooks = list(cfg.custom_hooks) + [
        dict(type='PhaseCheckpointHook')]
    (root / 'run' / 'configs').mkdir(parents=True)
    config_path = root / 'run' / 'configs' / 'semples.py'
    cfg.dump(str(config_path))
    Runner.from_cfg(cfg).train()
    return dict(run_dir=root / 'run', checkpoint=str(
        root / 'run' / 'semples' / 'iter_13.pth'))


def _load(path):
    return torch.load(path, map_location='cpu', weights_only=False)


def test_help_says_what_it_does():
    tool = load_tool('analysis_tools/rerun_phases')
    with pytest.raises(SystemExit):
        tool.parse_args(['--help'])
    assert tool.__doc__.split('\n')[0].startswith('Rerun an experiment run')


def test_a_refine_rerun_starts_at_the_end_of_cam_with_the_runs_prompts(
        tiny_run, tmp_path):
    tool = load_tool('analysis_tools/rerun_phases')
    semples = tiny_run['run_dir'] / 'semples'
    after_cam = _load(semples / 'cam_network_after_cam.pth')['state_dict']
    prompts = _load(tiny_run['checkpoint'])['state_dict'][
        'prompt_learner.ctx']
    result = tool.main([str(tiny_run['run_dir']), '--work-dir',
                        str(tmp_path), '--refine-weight', '0.5'])
    cfg = Config.fromfile(str(tmp_path / 'semples.py'))
    assert [p['name'] for p in cfg.model.phases] == ['refine']
    assert cfg.model.refine_loss.loss_weight == 0.5
    assert 'max_iters' not in cfg.train_cfg  # the phases' length, 3
    initial = _load(tmp_path / 'initial.pth')['state_dict']
    for key, value in after_cam.items():
        assert torch.equal(initial[key], value)
    final = _load(tmp_path / 'iter_3.pth')['state_dict']
    # refine restored the network it started from: the end of cam ...
    for key, value in after_cam.items():
        assert torch.equal(final['cam_snapshot.' + key.replace('.', '/')],
                           value)
    # ... trained it, and kept the run's prompts frozen
    assert any(not torch.equal(final[k], v) for k, v in after_cam.items()
               if v.is_floating_point())
    assert torch.equal(final['prompt_learner.ctx'], prompts)
    assert result['refine_weight'] == 0.5 and result['iters'] == dict(
        refine=3)
    assert 0 <= result['mIoU'] <= 100
    assert len(list((tmp_path / 'pseudo_masks').glob('*.png'))) == 64
    with pytest.raises(FileExistsError):
        tool.main([str(tiny_run['run_dir']), '--work-dir', str(tmp_path)])


def test_a_prompt_and_refine_rerun_learns_new_prompts_from_the_end_of_match(
        tiny_run, tmp_path):
    tool = load_tool('analysis_tools/rerun_phases')
    semples = tiny_run['run_dir'] / 'semples'
    after_cam = _load(semples / 'cam_network_after_cam.pth')['state_dict']
    after_match = _load(semples / 'cam_network_after_match.pth')[
        'state_dict']
    result = tool.main([str(tiny_run['run_dir']), '--work-dir',
                        str(tmp_path), '--phases', 'prompt', 'refine',
                        '--prompt-iters', '2', '--prompt-length', '3'])
    initial = _load(tmp_path / 'initial.pth')['state_dict']
    for key, value in after_match.items():
        assert torch.equal(initial[key], value)
    assert not any(k.startswith('prompt_learner.') for k in initial)
    final = _load(tmp_path / 'iter_5.pth')['state_dict']
    assert final['prompt_learner.ctx'].shape[1] == 3
    # the end of cam, which the run's snapshot held, not the end of match
    # the rerun started from
    for key, value in after_cam.items():
        assert torch.equal(final['cam_snapshot.' + key.replace('.', '/')],
                           value)
    assert result['iters'] == dict(prompt=2, refine=3)
    assert result['prompt_length'] == 3
