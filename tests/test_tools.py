"""tools/train.py and tools/test.py drive a config end to end on CPU:
training, evaluation, auto-resume and a 2-process gloo run."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import (REPO_ROOT, TEST_CONFIGS, free_port, load_tool,
                      start_next_second)

CONFIG = str(TEST_CONFIGS / 'tiny_encoder_decoder.py')


def _train(work_dir, root, *extra):
    start_next_second()  # else it shares a logger with the previous run
    load_tool('train').main([
        CONFIG, '--work-dir', str(work_dir),
        '--cfg-options', f'data_root={root}',
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}', *extra])


def _state(path):
    return torch.load(path, map_location='cpu', weights_only=False)


def test_help_works(python_exe):
    for tool in ('train', 'test'):
        out = subprocess.run([python_exe, f'tools/{tool}.py', '--help'],
                             cwd=REPO_ROOT, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert '--cfg-options' in out.stdout and '--launcher' in out.stdout


def test_train_then_test(tmp_path, tiny_seg_root):
    _train(tmp_path / 'train', tiny_seg_root)
    ckpt = tmp_path / 'train' / 'iter_6.pth'
    assert ckpt.exists()
    assert _state(ckpt)['meta']['iter'] == 6

    load_tool('test').main([
        CONFIG, str(ckpt), '--work-dir', str(tmp_path / 'test'),
        '--cfg-options', f'test_dataloader.dataset.data_root={tiny_seg_root}'])
    results = list((tmp_path / 'test').rglob('*.json'))
    metrics = [json.loads(p.read_text()) for p in results]
    assert any('mIoU' in m for m in metrics), metrics


@pytest.mark.skipif(torch.cuda.is_available(), reason='tests the CPU path')
def test_train_amp_on_cpu_uses_bf16_autocast(tmp_path, tiny_seg_root):
    _train(tmp_path / 'amp', tiny_seg_root, '--amp')
    log = sorted((tmp_path / 'amp').glob('*/*.log'))[-1].read_text()
    # the config the runner used (both phases' optimizers of a SemPLeS
    # config would change alike: tests/test_mixed_precision.py)
    assert "type='BF16OptimWrapper'" in log
    assert (tmp_path / 'amp' / 'iter_6.pth').exists()


@pytest.mark.float_compare
def test_resume_continues_at_right_iteration(tmp_path, tiny_seg_root):
    full, stopped = tmp_path / 'full', tmp_path / 'stopped'
    _train(full, tiny_seg_root)
    stopping = tmp_path / 'stopping.py'
    stopping.write_text(
        f"_base_ = ['{CONFIG}']\n"
        "custom_hooks = [dict(type='RandomStateHook'),\n"
        "                dict(type='StopAfterIterHook', stop_iter=4)]\n")
    with pytest.raises(KeyboardInterrupt):
        load_tool('train').main([
            str(stopping), '--work-dir', str(stopped), '--cfg-options',
            f'train_dataloader.dataset.data_root={tiny_seg_root}',
            f'val_dataloader.dataset.data_root={tiny_seg_root}'])
    assert (stopped / 'iter_4.pth').exists()
    assert not (stopped / 'iter_6.pth').exists()

    start_next_second()
    load_tool('train').main([
        CONFIG, '--work-dir', str(stopped), '--resume', '--cfg-options',
        f'train_dataloader.dataset.data_root={tiny_seg_root}',
        f'val_dataloader.dataset.data_root={tiny_seg_root}',
        f'test_dataloader.dataset.data_root={tiny_seg_root}'])
    resumed_log = sorted(stopped.glob('*/*.log'))[-1].read_text()
    assert 'resumed' in resumed_log.lower()
    assert 'Iter(train) [5/6]' in resumed_log
    assert 'Iter(train) [1/6]' not in resumed_log

    a = _state(full / 'iter_6.pth')['state_dict']
    b = _state(stopped / 'iter_6.pth')['state_dict']
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=key)


# srun for tests: the command in --ntasks processes on this machine, each
# with the variables srun gives a task.
FAKE_SRUN = r"""#!/usr/bin/env bash
ntasks=1
while [[ $# -gt 0 && $1 == -* ]]; do
  case $1 in
    --ntasks=*) ntasks=${1#--ntasks=} ;;
    -p) shift ;;  # the partition, a separate word
  esac
  shift
done
pids=()
for ((i = 0; i < ntasks; i++)); do
  SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_NTASKS=$ntasks \
    SLURM_NODELIST=localhost SLURM_JOB_ID=1 "$@" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
"""


def test_slurm_scripts_train_and_test_in_two_tasks(tmp_path, tiny_seg_root,
                                                   python_env):
    """tools/slurm_train.sh and slurm_test.sh as on a cluster, srun
    simulated: two tasks find their ranks in SLURM_* (gloo on CPU)."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'srun').write_text(FAKE_SRUN)
    (bin_dir / 'srun').chmod(0o755)
    env = dict(python_env, GPUS='2', GPUS_PER_NODE='2',
               PATH=f"{bin_dir}{os.pathsep}{python_env['PATH']}",
               MASTER_PORT=str(free_port()),
               PYTHON=python_env.get('PYTHON', sys.executable))
    work_dir = tmp_path / 'slurm'
    data = [f'{loader}.dataset.data_root={tiny_seg_root}'
            for loader in ('train_dataloader', 'val_dataloader',
                           'test_dataloader')]
    out = subprocess.run(
        ['bash', 'tools/slurm_train.sh', 'partition', 'job', CONFIG,
         '--work-dir', str(work_dir), '--cfg-options', *data,
         'train_cfg.max_iters=2', 'train_cfg.val_interval=2'],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    log = sorted(Path(work_dir).glob('*/*.log'))[-1].read_text()
    assert 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size
    assert (work_dir / 'iter_2.pth').exists()
    env['MASTER_PORT'] = str(free_port())
    out = subprocess.run(
        ['bash', 'tools/slurm_test.sh', 'partition', 'job', CONFIG,
         str(work_dir / 'iter_2.pth'), '--work-dir', str(tmp_path / 'test'),
         '--cfg-options', *data],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    log = sorted((tmp_path / 'test').glob('*/*.log'))[-1].read_text()
    assert 'GPU number: 2' in log and 'mIoU' in log


def test_slurm_environment_becomes_torch_distributeds():
    from semples_mm.utils.launch import first_slurm_host, slurm_environment
    assert slurm_environment(dict(
        SLURM_PROCID='3', SLURM_NTASKS='8', SLURM_LOCALID='1',
        SLURM_NODELIST='gpu[07-09,12]', MASTER_PORT='1234')) == dict(
            RANK='3', WORLD_SIZE='8', LOCAL_RANK='1', MASTER_ADDR='gpu07',
            MASTER_PORT='1234')
    assert first_slurm_host('a1,b2') == 'a1'
    with pytest.raises(RuntimeError, match=r"\['SLURM_NODELIST'\].*"
                       'tools/slurm_train.sh'):
        slurm_environment(dict(SLURM_PROCID='0', SLURM_NTASKS='1'))


def test_tta_wraps_the_model_and_swaps_the_pipeline(tmp_path):
    from mmengine.config import Config

    from semples_mm.utils.launch import enable_tta
    cfg = Config.fromfile(REPO_ROOT /
                          'configs/deeplabv2/deeplabv2_tiny_synthetic_pseudo.py')
    model = cfg.model.copy()
    enable_tta(cfg, 'tiny.py')
    assert cfg.model.type == 'SegTTAModel' and cfg.model.module == model
    assert cfg.test_dataloader.dataset.pipeline == cfg.tta_pipeline
    with pytest.raises(KeyError, match='tiny_encoder_decoder.py: --tta needs'):
        load_tool('test').main([
            CONFIG, str(tmp_path / 'missing.pth'), '--tta',
            '--work-dir', str(tmp_path)])
