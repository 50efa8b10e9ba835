"""The benchmark's profile, its FLOP count of the CPU's fused attention,
the model-selection phase and the run's own memory (no timing is
asserted)."""
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import REPO_ROOT, TEST_CONFIGS, load_tool
from semples_experiments.benchmark import (Benchmark, PeakMemory, count_flops,
                                           load_config, profile_step,
                                           selection_batch_size)
from semples_experiments.benchmark.profiling import module_pattern

TINY = str(TEST_CONFIGS / 'tiny_semples.py')


def test_fused_attention_on_cpu_is_counted():
    """scaled_dot_product_attention's CPU kernel: q k^T and the weighted
    sum of the values, 2 * B * heads * M * N * (d + d_v) FLOPs."""
    q = torch.randn(2, 3, 10, 8)
    k, v = torch.randn(2, 3, 12, 8), torch.randn(2, 3, 12, 8)
    flops = count_flops(lambda: F.scaled_dot_product_attention(q, k, v))
    assert flops == 2 * 2 * 3 * 10 * 12 * (8 + 8)


@pytest.mark.parametrize('name, pattern', [
    ('backbone.blocks.3.attn', 'backbone.blocks.*.attn'),
    ('backbone.blocks.11', 'backbone.blocks.*'),
    ('layer1.0.conv1', 'layer1.*.conv1'),
    ('cam_head', 'cam_head')])
def test_module_pattern_merges_list_entries(name, pattern):
    assert module_pattern(name) == pattern


class Toy(nn.Module):

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(8, 16), nn.ReLU(),
                                     nn.Linear(16, 16))
        self.head = nn.Linear(16, 4)


def test_profile_puts_time_and_flops_on_operators_and_modules():
    toy = Toy()
    x = torch.randn(5, 8)
    # the step calls the parts, not the model (as the export calls the
    # backbone and head): FLOPs must still land on their names
    profile = profile_step(toy, lambda: toy.head(toy.encoder(x)), 'cpu')
    modules = {row['name']: row for row in profile['modules']}
    assert modules['encoder']['flops'] == 2 * 5 * (8 * 16 + 16 * 16)
    assert modules['encoder.*']['flops'] == 2 * 5 * (8 * 16 + 16 * 16)
    assert modules['encoder.*']['calls'] == 3  # two linears and the ReLU
    assert modules['head']['flops'] == 2 * 5 * 16 * 4
    operators = {row['name']: row for row in profile['operators']}
    assert operators['aten::addmm']['calls'] == 3
    assert operators['aten::addmm']['flops'] == 2 * 5 * (
        8 * 16 + 16 * 16 + 16 * 4)
    assert profile['total_ms'] >= max(r['total_ms'] for r in modules.values())
    # the hooks are gone afterwards
    assert not toy.head._forward_hooks and not toy.head._forward_pre_hooks


def test_selection_batch_size_follows_the_hook_then_val_dataloader():
    cfg = dict(val_dataloader=dict(batch_size=3))
    assert selection_batch_size(cfg) == 3
    cfg['custom_hooks'] = [dict(type='BestCAMSelectionHook',
                                dataloader=dict(batch_size=2))]
    assert selection_batch_size(cfg) == 2
    assert selection_batch_size({}) == 1


def test_select_phase_runs_the_models_val_step(tmp_path, capsys,
                                               monkeypatch):
    """The model selection's path: val_step with the model's test_cfg
    (here scales 1.0 and 1.5 without flip, not the export's), on
    val_dataloader-sized batches of whole images; profiled on request."""
    cfg, _ = load_config(TINY, cfg_options={
        'model.test_cfg': dict(scales=(1.0, 1.5), flip=False),
        'val_dataloader.batch_size': 2})
    bench = Benchmark(cfg, batch_size=3, iters=1, warmup=0, flops=True,
                      export_image_size=(20, 30), profile=True)
    seen = []
    predict = bench.model.predict_cams
    monkeypatch.setattr(bench.model, 'predict_cams',
                        lambda x, c: seen.append(tuple(x.shape)) or
                        predict(x, c))
    run = bench.run('select')
    # one timed step, one counted, two profiled (FLOPs by module, then
    # time): 20x30 and 30x45 each
    assert seen == [(2, 3, 20, 30), (2, 3, 30, 45)] * 4
    assert run['batch_size'] == 2 and run['first_step_losses'] is None
    assert run['export_settings']['scales'] == [1.0, 1.5]
    assert run['export_settings']['flip'] is False
    assert run['flops_per_step'] > 0
    names = {row['name'] for row in run['profile']['modules']}
    assert {'backbone', 'cam_head'} <= names

    out = tmp_path / 'figures.json'
    load_tool('benchmark').main([
        TINY, '--phase', 'select', '--iters', '1', '--warmup', '0',
        '--no-flops', '--profile', '--export-image-size', '20', '30',
        '--out', str(out)])
    printed = capsys.readouterr().out
    assert 'select: the model selection' in printed
    assert '1,464 images (VOC train)' in printed
    assert '| module |' in printed
    report = json.loads(out.read_text())
    assert [r['phase'] for r in report['runs']] == ['select']


def test_run_memory_is_the_peak_over_what_was_held():
    """In a fresh process: in this one, memory that earlier tests freed
    stays resident in the allocator's pool and serves a new tensor without
    growing the resident set (seen: 0 bytes grown after the WeakTr
    tests)."""
    script = textwrap.dedent('''
        import torch
        from semples_experiments.benchmark import PeakMemory
        memory = PeakMemory('cpu')
        if 'VmHWM, reset' not in memory.kind:
            print('cannot reset')
        else:
            memory.reset()
            held = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
            print(memory.peak_bytes() - memory.start_bytes)
    ''')
    out = subprocess.run([sys.executable, '-c', script], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    if out.stdout.strip() == 'cannot reset':
        pytest.skip('the peak RSS cannot be reset on this system')
    assert int(out.stdout) >= 60 * 2**20
