"""The whole-recipe cost: steps, selections and export from a config,
FLOPs from benchmark figures, checked against a hand count."""
import json

import pytest
from mmengine.config import Config

from conftest import REPO_ROOT, load_tool
from semples_experiments.benchmark.recipe_cost import (flops_at, flops_points,
                                                       format_recipe_cost,
                                                       phase_batch_sizes,
                                                       recipe_cost)

RECIPE = Config(dict(
    model=dict(phases=[dict(name='match', iters=120),
                       dict(name='prompt', iters=30),
                       dict(name='refine', iters=121)]),
    train_dataloader=dict(batch_size=4),
    train_cfg=dict(phase_dataloaders=dict(prompt=dict(batch_size=8))),
    custom_hooks=[dict(type='BestCAMSelectionHook',
                       phases=('match', 'refine'))]))
# GFLOP per image, ours and the authors'
PER_IMAGE = {('match', 'ours'): 1, ('match', 'reference'): 3,
             ('prompt', 'ours'): 2, ('prompt', 'reference'): 5,
             ('refine', 'ours'): 1, ('refine', 'reference'): 4,
             ('select', 'ours'): 6, ('select', 'reference'): 5,
             ('export', 'ours'): 20}


def figures(per_image, batch=2):
    return dict(runs=[dict(phase=phase, impl=impl, batch_size=batch,
                           flops_per_step=gflop * 1e9 * batch)
                      for (phase, impl), gflop in per_image.items()])


def test_recipe_cost_by_hand():
    assert phase_batch_sizes(RECIPE) == dict(match=4, prompt=8, refine=4)
    points = flops_points([figures(PER_IMAGE)])
    assert points['prompt', 'reference'] == [(2, pytest.approx(10e9))]
    rows = {r['part']: r for r in recipe_cost(
        RECIPE, points, train_images=10, selection_images=5,
        export_images=7)}
    assert list(rows) == ['match', 'prompt', 'refine', 'match selection',
                          'refine selection', 'export']
    # a step: batch x per image
    assert rows['prompt']['flops_ours'] == pytest.approx(8 * 2e9)
    assert rows['prompt']['total_reference'] == pytest.approx(30 * 8 * 5e9)
    # an epoch is 10 // 4 = 2 steps: 60 selections in match, 61 in refine
    # (the phase end adds one), 5 images each
    assert rows['match selection']['count'] == 60 * 5
    assert rows['refine selection']['count'] == 61 * 5
    assert rows['refine selection']['total_ours'] == pytest.approx(
        61 * 5 * 6e9)
    assert rows['export']['total_ours'] == pytest.approx(7 * 20e9)
    assert rows['export']['total_reference'] is None  # no figure
    table = format_recipe_cost(list(rows.values()), 1.0, [('half', 0.5)])
    total = (120 * 4 + 30 * 8 * 2 + 121 * 4) * 1e9 + (60 + 61) * 5 * 6e9 \
        + 7 * 20e9
    assert f'| total | | | {total / 1e15:,.0f} / - |' in table
    hours = total / (0.5e12 * 3600)
    assert f'| half (50.0% of 1 TFLOP/s) | {hours:,.1f} | - |' in table


def test_flops_at_fits_fixed_and_per_image_work():
    # 3 GFLOP a step plus 2 per image, measured at batches 2, 4 and 8
    points = [(b, (3 + 2 * b) * 1e9) for b in (2, 4, 8)]
    assert flops_at(points, 64) == pytest.approx((3 + 2 * 64) * 1e9)
    # one batch size: in proportion
    assert flops_at(points[:1], 64) == pytest.approx(7e9 / 2 * 64)


def test_tool_reads_figures_and_the_authors_inference(tmp_path, capsys):
    ours = tmp_path / 'ours.json'
    ours.write_text(json.dumps(figures(PER_IMAGE)))
    authors = tmp_path / 'authors.json'
    authors.write_text(json.dumps(figures({('export', 'ours'): 18})))
    rows = load_tool('analysis_tools/recipe_cost').main([
        str(REPO_ROOT / 'configs/semples/voc_weaktr.py'), '--figures',
        str(ours), '--authors-inference', str(authors), '--train-images',
        '10582', '--selection-images', '1464', '--export-images', '10582',
        '--utilisation', '0.35', '0.05'])
    rows = {r['part']: r for r in rows}
    # voc_weaktr.py: 60 epochs of 165 steps at batch 64 in match
    assert rows['match']['count'] == 9900
    assert rows['match']['batch'] == 64
    assert rows['match selection']['count'] == 60 * 1464
    assert rows['export']['total_reference'] == pytest.approx(
        10582 * 18e9)
    printed = capsys.readouterr().out
    assert '35.0% of 989.4 TFLOP/s' in printed and '5.0%' in printed
