"""tools/benchmark.py and semples_experiments.benchmark: the authors'-way
reference computes the same losses (and gradients) as SemPLeS.loss while
doing the authors' extra work (CLIP's weights get gradients, per-pair
texts, stage 3's extra encodings, the detached backbone under autograd),
the random batches and config handling do what they say, and the tool runs
end to end (no timing is asserted)."""
import json
import math

import numpy as np
import pytest
import torch

from conftest import (TEST_CONFIGS, TINY_GRAD_SUMS, TINY_LOSS_SUMS,
                      load_tool, REPO_ROOT)
from float_compare import assert_close_up_to_rounding, rounding_tolerance
from semples_experiments.benchmark import (
    Benchmark, bf16_peak_tflops, build_model, build_optim, check_weight_files,
    clip_weights_trainable, compare, enter_phase, export_image_sizes,
    format_report, load_config, make_random_init, random_batch,
    random_labels, reference_loss, reference_train_step, snapshot_state,
    step_time_stats)

TINY = str(TEST_CONFIGS / 'tiny_semples.py')
NUM_CLASSES = 5  # tiny_semples.py
# Image 0 has two classes, class 3 is in no image.
TWO_CLASSES_ONE_ABSENT = [[1, 1, 0, 0, 0], [0, 0, 1, 0, 1], [1, 0, 0, 0, 0]]
NO_PAIR = [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
LOSS_KEYS = dict(match={'loss_match'}, prompt={'loss_prompt'},
                 refine={'loss_match', 'loss_refine'})
IMPLS = ('ours', 'reference', 'reference_frozen_clip')
# A tiny WeakTr CAM network for the tiny config (as in test_weaktr.py).
TINY_WEAKTR = dict(
    backbone=dict(type='WeakTrViT', num_class_tokens=NUM_CLASSES,
                  img_size=32, patch_size=8, embed_dims=48, num_layers=2,
                  num_heads=3, drop_path_rate=0.0),
    cam_head=dict(type='WeakTrCAMHead', in_channels=48,
                  num_classes=NUM_CLASSES, num_layers=2, num_heads=3,
                  reduction=2))


@pytest.fixture(scope='module')
def tiny_model():
    cfg, _ = load_config(TINY)
    torch.manual_seed(0)
    return build_model(cfg, 'cpu')


def preprocessed(model, labels, seed=0):
    labels = torch.tensor(labels, dtype=torch.float32)
    batch = random_batch(labels.shape[0], (32, 32), NUM_CLASSES, seed,
                         labels=labels)
    data = model.data_preprocessor(batch, True)
    return data['inputs'], data['data_samples'], labels


def trained_parameter(model, phase):
    return (model.prompt_learner.ctx if phase == 'prompt' else
            model.cam_head.classifier.weight)


def record_loss_inputs(monkeypatch, model):
    """Record the per-pair similarities every loss module is called with:
    the clamped losses of a random CLIP can hide a wrong pairing, the
    similarities cannot."""
    calls = []
    for name in ('match_loss', 'prompt_loss', 'refine_loss'):
        module = getattr(model, name)

        def recording(*args, _forward=module.forward, _name=name):
            calls.append((_name, [None if a is None else a.detach().clone()
                                  for a in args]))
            return _forward(*args)

        monkeypatch.setattr(module, 'forward', recording)
    return calls


def fresh_model(backbone='resnet', detach_backbone_in=()):
    """The tiny config's model (or with the tiny WeakTr CAM network), seed
    0, for tests that step or patch it."""
    cfg, _ = load_config(TINY)
    if backbone == 'weaktr':
        cfg.model.backbone = TINY_WEAKTR['backbone']
        cfg.model.cam_head = TINY_WEAKTR['cam_head']
    cfg.model.detach_backbone_in = detach_backbone_in
    torch.manual_seed(0)
    return cfg, build_model(cfg, 'cpu')


@pytest.mark.float_compare
@pytest.mark.parametrize('clip', ['trainable', 'frozen'])
@pytest.mark.parametrize('phase', ['match', 'prompt', 'refine'])
@pytest.mark.parametrize('labels', [TWO_CLASSES_ONE_ABSENT, NO_PAIR, None],
                         ids=['two_classes_one_absent', 'no_pair', 'random'])
def test_reference_loss_equals_semples_loss(tiny_model, monkeypatch, phase,
                                            labels, clip):
    """Both references (CLIP trainable as the authors ship it, and frozen)
    give ours' losses, similarities and gradients."""
    model = tiny_model
    model.train()
    enter_phase(model, phase)
    if labels is None:
        labels = random_labels(6, NUM_CLASSES,
                               torch.Generator().manual_seed(3)).tolist()
    inputs, samples, labels = preprocessed(model, labels)
    param = trained_parameter(model, phase)
    calls = record_loss_inputs(monkeypatch, model)

    ours = model.loss(inputs, samples)
    ours_calls = list(calls)
    calls.clear()
    with clip_weights_trainable(model.clip, clip == 'trainable'):
        reference = reference_loss(model, inputs, labels)
    assert set(ours) == set(reference) == LOSS_KEYS[phase]
    for key in ours:
        # A loss rounds like the similarities it reads (compared pair by
        # pair below), on their scale, 1, even where it is much smaller
        # (the refine loss of a similarity just above its clamp: 5e-6).
        assert_close_up_to_rounding(reference[key], ours[key],
                                    scale=max(float(ours[key].abs()), 1.0),
                                    **TINY_LOSS_SUMS)
        assert torch.isfinite(ours[key])
    values = [float(v.detach()) for v in ours.values()]
    if labels.sum() == 0:
        # No present (image, class) pair: every loss is a zero.
        assert values == [0.] * len(values)
    else:
        assert min(values) > 0
    # The same similarities, pair by pair, went into the same losses.
    assert [name for name, _ in calls] == [name for name, _ in ours_calls]
    num_pairs = int(labels.sum())
    for (_, ref_args), (_, our_args) in zip(calls, ours_calls):
        for ref_arg, our_arg in zip(ref_args, our_args):
            if our_arg is None:
                assert ref_arg is None
                continue
            assert our_arg.shape == (num_pairs, )
            assert_close_up_to_rounding(ref_arg, our_arg, **TINY_LOSS_SUMS)
    # The same gradients reach what the phase trains.
    grad_ours, = torch.autograd.grad(sum(ours.values()), param,
                                     allow_unused=True)
    grad_ref, = torch.autograd.grad(sum(reference.values()), param,
                                    allow_unused=True)
    if labels.sum() > 0:
        assert grad_ours is not None and grad_ours.abs().sum() > 0
        # Batched and per-pair sums round differently.
        assert_close_up_to_rounding(grad_ref, grad_ours, **TINY_GRAD_SUMS)
    if phase == 'prompt' and labels.sum() > 0:
        # Prompts of a class absent from the batch get no gradient.
        absent = (labels.sum(0) == 0).nonzero().flatten()
        assert grad_ours[absent].abs().sum() == 0


def test_reference_reencodes_texts_every_step(tiny_model):
    """The reference must not use FrozenCLIP's text cache (the authors
    re-encode the class texts at every step); ours fills it."""
    model = tiny_model
    model.train()
    enter_phase(model, 'match')
    inputs, samples, labels = preprocessed(model, TWO_CLASSES_ONE_ABSENT)
    model.clip._text_cache.clear()
    reference_loss(model, inputs, labels)
    assert len(model.clip._text_cache) == 0
    model.loss(inputs, samples)
    assert len(model.clip._text_cache) == NUM_CLASSES


def clip_grads(model):
    """name -> gradient of every CLIP weight (None where none arrived)."""
    return {name: p.grad for name, p in model.clip.named_parameters()}


@pytest.mark.float_compare
@pytest.mark.parametrize('phase', ['match', 'prompt', 'refine'])
def test_reference_backward_reaches_clip_weights_and_ours_does_not(phase):
    """The authors never freeze CLIP: the reference's backward computes
    gradients for the image and text towers (and, in refine, for the
    prompts nothing steps). The frozen-CLIP reference and ours compute
    none; all three log the same losses and leave the flags as they were."""
    cfg, model = fresh_model()
    initial = snapshot_state(model)
    batch = random_batch(3, (32, 32), NUM_CLASSES, seed=2,
                         labels=torch.tensor(TWO_CLASSES_ONE_ABSENT,
                                             dtype=torch.float32))
    flags = [p.requires_grad for p in model.clip.parameters()]
    assert not any(flags)
    logged, grads, ctx_grads = {}, {}, {}
    for impl in IMPLS:
        model.load_state_dict(initial)
        model.zero_grad(set_to_none=True)
        model.train()
        enter_phase(model, phase)
        optim = build_optim(cfg, model)
        if impl == 'ours':
            logged[impl] = model.train_step(batch, optim)
        else:
            logged[impl] = reference_train_step(
                model, batch, optim,
                frozen_clip=impl == 'reference_frozen_clip')
        assert [p.requires_grad for p in model.clip.parameters()] == flags
        grads[impl] = clip_grads(model)
        ctx_grads[impl] = model.prompt_learner.ctx.grad
    # ours also logs the learning rates it trained with
    losses = {k: v for k, v in logged['ours'].items() if k.startswith('loss')}
    assert {k for k in logged['ours'] if k not in losses} == {
        'cam.lr', 'prompt.lr'}
    for impl in ('reference', 'reference_frozen_clip'):
        assert logged[impl].keys() == losses.keys()
        for key, value in losses.items():
            assert_close_up_to_rounding(
                float(logged[impl][key].detach()), float(value.detach()),
                **TINY_LOSS_SUMS, msg=key)
    assert all(g is None for g in grads['ours'].values())
    assert all(g is None for g in grads['reference_frozen_clip'].values())
    ref = grads['reference']
    visual = [g for name, g in ref.items() if name.startswith('model.visual')]
    text = [g for name, g in ref.items()
            if name.startswith('model.transformer')]
    assert visual and all(g is not None for g in visual)
    assert text and all(g is not None for g in text)
    assert ref['model.visual.conv1.weight'].abs().sum() > 0
    assert ref['model.transformer.resblocks.0.attn.in_proj_weight'].abs(
    ).sum() > 0
    assert ref['model.text_projection'].abs().sum() > 0
    if phase == 'refine':
        # The prompts are encoded with autograd in stage 3 and nothing
        # steps or zeroes them; ours keeps their features without a graph.
        # (Their values may be 0: this random CLIP's prompt cosines clamp.)
        ctx = model.prompt_learner.ctx
        for impl in ('reference', 'reference_frozen_clip'):
            assert ctx_grads[impl] is not None
            assert ctx_grads[impl].shape == ctx.shape
        assert ctx_grads['ours'] is None


def record_clip_calls(monkeypatch, model):
    """Record every call of the open_clip towers (rows, output needs grad)
    and of encode_prompts (output needs grad)."""
    calls = dict(text=[], image=[], prompts=[])
    clip = model.clip
    in_prompts = []  # prompts run the text tower too: counted as prompts
    for key, owner, name in (('text', clip.model, 'encode_text'),
                             ('image', clip.model, 'encode_image'),
                             ('prompts', clip, 'encode_prompts')):
        def recording(x, *args, _forward=getattr(owner, name), _key=key,
                      **kwargs):
            if _key == 'text' and any(in_prompts):
                return _forward(x, *args, **kwargs)
            in_prompts.append(_key == 'prompts')
            try:
                out = _forward(x, *args, **kwargs)
            finally:
                in_prompts.pop()
            calls[_key].append((x.shape[0], out.requires_grad))
            return out

        monkeypatch.setattr(owner, name, recording)
    return calls


# Per phase, the (rows, output needs grad) of each tower call with the
# labels SEVEN_PAIRS (7 pairs of 3 images, 5 classes), CLIP trainable. The
# authors: clip_forward (fg, then bg) each encode one text per pair; stage
# 3's clip_forward_global encodes the prompts, the fg crops and the texts
# once more; stage 2's encodes the prompts, the bg crops and the texts.
SEVEN_PAIRS = [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [0, 0, 0, 1, 1]]
AUTHORS_CALLS = dict(
    match=dict(text=[(7, True)] * 2, image=[(7, True)] * 2, prompts=[]),
    prompt=dict(text=[(7, True)], image=[(7, True)], prompts=[(5, True)]),
    refine=dict(text=[(7, True)] * 3, image=[(7, True)] * 3,
                prompts=[(5, True)]))
# Ours: the 5 class texts once (then cached, no graph), the crops in one
# pass, the refine phase's frozen prompts once without a graph; its prompt
# phase reads the crop features without a graph.
OUR_CALLS = dict(
    match=dict(text=[(5, False)], image=[(14, True)], prompts=[]),
    prompt=dict(text=[(5, False)], image=[(7, False)], prompts=[(5, True)]),
    refine=dict(text=[(5, False)], image=[(14, True)],
                prompts=[(5, False)]))


@pytest.mark.parametrize('phase', ['match', 'prompt', 'refine'])
def test_reference_encodes_what_the_authors_encode(monkeypatch, phase):
    """Per-pair texts with gradients at every step, stage 3's third
    encodings and its prompts with gradients: counted at the towers."""
    _, model = fresh_model()
    model.train()
    enter_phase(model, phase)
    inputs, samples, labels = preprocessed(model, SEVEN_PAIRS)
    calls = record_clip_calls(monkeypatch, model)
    for _ in range(2):  # the same work at every step
        for value in calls.values():
            value.clear()
        with clip_weights_trainable(model.clip):
            reference_loss(model, inputs, labels)
        assert calls == AUTHORS_CALLS[phase]
    for value in calls.values():
        value.clear()
    model.loss(inputs, samples)
    assert calls == OUR_CALLS[phase]
    calls['text'].clear()
    model.loss(inputs, samples)
    assert calls['text'] == []  # cached


def backbone_output_requires_grad(model):
    """A list that gets, per backbone forward, whether any tensor of its
    output requires grad."""
    seen = []

    def hook(module, args, output):
        tensors = [t for t in (output if isinstance(output, tuple) else
                               (output, )) if torch.is_tensor(t)]
        seen.append(any(t.requires_grad for t in tensors))

    model.backbone.register_forward_hook(hook)
    return seen


@pytest.mark.float_compare
@pytest.mark.parametrize('backbone', ['resnet', 'weaktr'])
def test_reference_runs_the_detached_backbone_under_autograd(backbone):
    """WeakTr's forward runs its backbone with autograd and detaches the
    outputs; where ours detaches the backbone (no autograd at all), the
    reference does the same as WeakTr: a graph is built, no gradient
    reaches the backbone, the losses and head gradients are ours'."""
    _, model = fresh_model(backbone, detach_backbone_in=('match', 'refine'))
    model.train()
    enter_phase(model, 'match')
    inputs, samples, labels = preprocessed(model, TWO_CLASSES_ONE_ABSENT)
    seen = backbone_output_requires_grad(model)
    head = [p for p in model.cam_head.parameters() if p.requires_grad]
    results = {}
    for impl in ('ours', 'reference'):
        seen.clear()
        model.zero_grad(set_to_none=True)
        losses = (model.loss(inputs, samples) if impl == 'ours' else
                  reference_loss(model, inputs, labels))
        losses['loss_match'].backward()
        assert all(p.grad is None for p in model.backbone.parameters())
        results[impl] = (seen[:], float(losses['loss_match'].detach()),
                         [p.grad.clone() for p in head])
    assert results['ours'][0] == [False]
    assert results['reference'][0] == [True]
    assert_close_up_to_rounding(results['reference'][1], results['ours'][1],
                                **TINY_LOSS_SUMS)
    scale = max(g.abs().max().item() for g in results['ours'][2])
    assert scale > 0
    # Rounding differs between the per-pair and batched ways; compare on
    # the scale of the largest head gradient.
    for ref_grad, our_grad in zip(results['reference'][2],
                                  results['ours'][2]):
        assert_close_up_to_rounding(ref_grad, our_grad, scale=scale,
                                    **TINY_GRAD_SUMS)


@pytest.mark.float_compare
def test_reference_run_restores_clip_and_leaves_ours_unchanged():
    """After a reference run CLIP is frozen again and no gradient is left
    on any weight, so ours run after it counts the same FLOPs and gives the
    same losses as before it."""
    cfg, _ = load_config(TINY)
    bench = Benchmark(cfg, batch_size=2, iters=1, warmup=0)
    before = bench.run('refine', 'ours')
    reference = bench.run('refine', 'reference')
    assert not any(p.requires_grad for p in bench.model.clip.parameters())
    assert all(p.grad is None for p in bench.model.parameters())
    after = bench.run('refine', 'ours')
    assert after['flops_per_step'] == before['flops_per_step']
    assert after['first_step_losses'] == before['first_step_losses']
    assert reference['flops_per_step'] > before['flops_per_step']


def test_random_labels_have_one_to_three_classes_and_repeat():
    labels = random_labels(200, 20, torch.Generator().manual_seed(0))
    counts = labels.sum(1)
    assert labels.shape == (200, 20)
    assert set(labels.unique().tolist()) == {0., 1.}
    assert set(counts.tolist()) == {1., 2., 3.}
    assert torch.equal(
        labels, random_labels(200, 20, torch.Generator().manual_seed(0)))
    # Never more classes than exist.
    assert random_labels(50, 2, torch.Generator().manual_seed(0)).sum(
        1).max() <= 2


def test_random_batch_runs_through_train_step(tiny_model):
    from semples_experiments.benchmark import build_optim
    cfg, _ = load_config(TINY)
    model = tiny_model
    model.train()
    enter_phase(model, 'match')
    batch = random_batch(4, (32, 32), NUM_CLASSES, seed=1)
    assert [tuple(x.shape) for x in batch['inputs']] == [(3, 32, 32)] * 4
    assert batch['inputs'][0].dtype == torch.uint8
    log_vars = model.train_step(batch, build_optim(cfg, model))
    assert 'loss_match' in log_vars


def test_step_time_stats_by_hand():
    stats = step_time_stats([5., 1., 4., 2., 3.])
    assert stats['median'] == 3.
    # linear interpolation: p10 at position 0.4, p90 at 3.6 of 1..5
    assert stats['p10'] == pytest.approx(1.4)
    assert stats['p90'] == pytest.approx(4.6)
    assert stats['mean'] == 3.
    assert stats['std'] == pytest.approx(math.sqrt(2.))
    assert (stats['min'], stats['max']) == (1., 5.)


def test_bf16_peak_table():
    assert bf16_peak_tflops('NVIDIA H100 80GB HBM3') == 989.4
    assert bf16_peak_tflops('NVIDIA H100 PCIe') == 756.0
    assert bf16_peak_tflops('NVIDIA H200') == 989.4
    assert bf16_peak_tflops('NVIDIA A100-SXM4-80GB') == 312.0
    assert bf16_peak_tflops('Tesla T4') is None


def test_random_init_drops_every_weight_file():
    cfg, changed = load_config(
        str(REPO_ROOT / 'configs/semples/voc_deits.py'), random_init=True)
    assert set(changed) == {'model.backbone.init_cfg',
                            'model.clip.pretrained'}
    assert 'init_cfg' not in cfg.model.backbone
    assert cfg.model.clip.pretrained is None
    assert make_random_init(cfg) == []  # nothing left to drop


def test_missing_weight_file_names_key_and_way_out():
    with pytest.raises(FileNotFoundError,
                       match=r'model\.backbone\.init_cfg.*--random-init'):
        load_config(str(REPO_ROOT / 'configs/semples/voc.py'))
    cfg, _ = load_config(str(REPO_ROOT / 'configs/semples/voc.py'),
                         random_init=True)
    check_weight_files(cfg)  # passes once dropped


@pytest.mark.float_compare
def test_tool_all_phases_ours_and_both_references(tmp_path, capsys):
    out = tmp_path / 'figures.json'
    load_tool('benchmark').main([
        TINY, '--iters', '2', '--warmup', '1', '--batch-size', '3',
        '--out', str(out)])
    printed = capsys.readouterr().out
    assert 'img/s' in printed and 'speed-up of ours' in printed
    report = json.loads(out.read_text())
    meta = report['meta']
    for key in ('device', 'device_name', 'torch_version', 'batch_size',
                'iters', 'warmup', 'image_size', 'num_classes',
                'memory_kind', 'config', 'impls'):
        assert key in meta, key
    assert (meta['batch_size'], meta['iters'], meta['warmup']) == (3, 2, 1)
    assert meta['image_size'] == [32, 32] and meta['device'] == 'cpu'
    runs = {(r['phase'], r['impl']): r for r in report['runs']}
    expected = {(p, i) for p in ('cam', 'match', 'prompt', 'refine')
                for i in IMPLS} | {('export', 'ours')}
    assert set(runs) == expected
    for (phase, impl), run in runs.items():
        for key in ('images_per_s', 'pairs_per_s', 'step_time_s',
                    'peak_memory_bytes', 'flops_per_step',
                    'achieved_tflops', 'mfu', 'first_step_losses'):
            assert key in run, (phase, impl, key)
        assert run['images_per_s'] > 0 and run['peak_memory_bytes'] > 0
        assert run['flops_per_step'] > 0
        assert set(run['step_time_s']) >= {'median', 'p10', 'p90', 'std'}
        if phase != 'export':
            assert 1 <= run['pairs_per_batch'] <= 9  # 3 images, 1-3 each
    # All ways start from the same weights and batch: same first losses.
    assert {(c['phase'], c['reference']) for c in report['comparisons']} == {
        (p, i) for p in ('cam', 'match', 'prompt', 'refine')
        for i in ('reference', 'reference_frozen_clip')}
    for row in report['comparisons']:
        assert row['speedup'] > 0
        assert row['loss_max_rel_diff'] <= rounding_tolerance(
            **TINY_LOSS_SUMS), row
    assert 'over reference_frozen_clip' in printed
    # The authors' extra work shows in the counted FLOPs: CLIP's weight
    # gradients on top of the frozen-CLIP program, which re-encodes texts
    # per pair (and, in refine, crops and prompts) on top of ours.
    flops = {key: run['flops_per_step'] for key, run in runs.items()}
    assert flops['cam', 'ours'] == flops['cam', 'reference'] == flops[
        'cam', 'reference_frozen_clip']
    for phase in ('match', 'prompt', 'refine'):
        assert (flops[phase, 'ours'] < flops[phase, 'reference_frozen_clip']
                < flops[phase, 'reference']), phase


@pytest.mark.float_compare
def test_tool_reference_only_and_flags(tmp_path):
    out = tmp_path / 'figures.json'
    load_tool('benchmark').main([
        TINY, '--phase', 'prompt', '--reference', '--iters', '1',
        '--warmup', '0', '--batch-size', '2', '--no-flops',
        '--out', str(out)])
    report = json.loads(out.read_text())
    assert [(r['phase'], r['impl']) for r in report['runs']] == [
        ('prompt', 'reference')]
    assert report['runs'][0]['flops_per_step'] is None
    assert report['comparisons'] == []
    load_tool('benchmark').main([
        TINY, '--phase', 'match', '--impl', 'reference_frozen_clip', 'ours',
        '--iters', '1', '--warmup', '0', '--batch-size', '2', '--no-flops',
        '--out', str(out)])
    report = json.loads(out.read_text())
    assert [r['impl'] for r in report['runs']] == [
        'ours', 'reference_frozen_clip']
    assert [(c['phase'], c['reference']) for c in report['comparisons']] == [
        ('match', 'reference_frozen_clip')]
    assert report['comparisons'][0]['loss_max_rel_diff'] <= \
        rounding_tolerance(**TINY_LOSS_SUMS)
    load_tool('benchmark').main([
        TINY, '--phase', 'cam', '--reference-frozen-clip', '--iters', '1',
        '--warmup', '0', '--batch-size', '2', '--no-flops',
        '--out', str(out)])
    assert [r['impl'] for r in json.loads(out.read_text())['runs']] == [
        'reference_frozen_clip']
    with pytest.raises(ValueError, match='export phase has no reference'):
        load_tool('benchmark').main([
            TINY, '--phase', 'export', '--reference', '--iters', '1',
            '--no-flops'])


@pytest.mark.skipif(torch.cuda.is_available(), reason='CUDA is present')
def test_tool_device_cuda_without_cuda_fails_clearly(capsys):
    with pytest.raises(SystemExit):
        load_tool('benchmark').main([TINY, '--device', 'cuda'])
    assert 'CUDA is not available' in capsys.readouterr().err


@pytest.mark.float_compare
def test_tool_prompt_phase_with_the_feature_cache(tmp_path, capsys):
    """With ViewCacheCropFeatures the repeated batch misses in the
    warm-up step and hits in the 3 timed ones; the losses still equal the
    reference's."""
    out = tmp_path / 'figures.json'
    load_tool('benchmark').main([
        TINY, '--phase', 'prompt', '--iters', '3', '--warmup', '1',
        '--batch-size', '2', '--no-flops', '--out', str(out),
        '--cfg-options',
        'model.prompt_crop_features.type=ViewCacheCropFeatures',
        'model.prompt_crop_features.max_views=10'])
    assert 'hit rate 75%' in capsys.readouterr().out
    report = json.loads(out.read_text())
    runs = {r['impl']: r for r in report['runs']}
    assert runs['ours']['prompt_cache_hit_rate'] == pytest.approx(0.75)
    assert 'prompt_cache_hit_rate' not in runs['reference']
    assert report['comparisons'][0]['loss_max_rel_diff'] <= \
        rounding_tolerance(**TINY_LOSS_SUMS)


@pytest.mark.float_compare
def test_prompt_bank_run_reads_the_bank_and_keeps_the_losses(
        monkeypatch):
    """The bank is built once (one frozen_crop_features call); the steps
    read it and give the reference's losses."""
    cfg, _ = load_config(TINY)
    bench = Benchmark(cfg, batch_size=3, iters=2, warmup=1, flops=False,
                      prompt_bank=True)
    calls = []
    compute = bench.model.frozen_crop_features
    monkeypatch.setattr(bench.model, 'frozen_crop_features',
                        lambda *args: calls.append(1) or compute(*args))
    ours = bench.run('prompt', 'ours')
    assert len(calls) == 1
    assert ours['prompt_bank_build_images_per_s'] > 0
    assert len(bench.model.crop_features) == 0  # not left behind
    reference = bench.run('prompt', 'reference')
    assert 'prompt_bank_build_images_per_s' not in reference
    assert compare([ours, reference])[0]['loss_max_rel_diff'] <= \
        rounding_tolerance(**TINY_LOSS_SUMS)
    report = dict(meta=bench.meta(), runs=[ours, reference],
                  comparisons=compare([ours, reference]))
    assert 'prompt feature bank' in format_report(report)


@pytest.mark.float_compare
def test_tool_amp_on_cpu_runs_both_ways_in_bf16(tmp_path):
    out = tmp_path / 'figures.json'
    load_tool('benchmark').main([
        TINY, '--phase', 'match', '--amp', '--device', 'cpu', '--iters', '1',
        '--warmup', '0', '--batch-size', '2', '--no-flops',
        '--out', str(out)])
    report = json.loads(out.read_text())
    assert report['meta']['amp'] is True
    # ours and the reference autocast alike, so their losses still agree
    assert report['comparisons'][0]['loss_max_rel_diff'] <= 1e-2


def test_export_image_sizes_follow_the_export_pipeline():
    """VOC's val pipeline resizes to short side 512 (long side <= 2048):
    375x500 -> 512x683 (x1.3653), COCO's 480x640 too, 333x500 -> 512x769
    (x1.5375); the synthetic world's pipeline does not resize."""
    voc, _ = load_config(str(REPO_ROOT / 'configs/semples/voc.py'),
                         random_init=True)
    assert export_image_sizes(voc) == ((375, 500), (512, 683))
    assert export_image_sizes(voc, (480, 640)) == ((480, 640), (512, 683))
    assert export_image_sizes(voc, (333, 500)) == ((333, 500), (512, 769))
    synthetic, _ = load_config(str(REPO_ROOT / 'configs/semples/synthetic.py'))
    assert export_image_sizes(synthetic) == ((64, 64), (64, 64))
    assert export_image_sizes(synthetic, (40, 50)) == ((40, 50), (40, 50))


def test_export_run_times_whole_resized_images(monkeypatch):
    """The export is timed on its own batch size, on images resized by the
    val pipeline, with CAMs normalised at the images' own size."""
    cfg, _ = load_config(TINY, cfg_options={
        'val_dataloader.dataset.pipeline': [
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(64, 40), keep_ratio=True),
            dict(type='PackWSSSInputs')],
        'pseudo_label_cfg': dict(batch_size=2, scales=(1.0, 1.5))})
    bench = Benchmark(cfg, batch_size=3, iters=1, warmup=0, flops=False,
                      export_image_size=(20, 30))
    seen = []
    predict = bench.model.predict_cams
    monkeypatch.setattr(bench.model, 'predict_cams',
                        lambda x, c: seen.append(tuple(x.shape)) or
                        predict(x, c))
    run = bench.run('export')
    # 20x30 -> x min(64 / 30, 40 / 20) = x2 -> 40x60; scale 1.5 -> 60x90;
    # 2 images and their flips in each pass
    assert seen == [(4, 3, 40, 60), (4, 3, 60, 90)]
    assert run['batch_size'] == 2
    assert run['export_settings']['image_size'] == [20, 30]
    assert run['export_settings']['input_size'] == [40, 60]
    report = dict(meta=bench.meta(), runs=[run], comparisons=[])
    assert '2 whole 20x30 images' in format_report(report)
    assert 'to 40x60' in format_report(report)
    cams = bench._export_fn(bench._export_batch())()
    assert tuple(cams.shape) == (NUM_CLASSES, 20, 30)


def test_whole_export_of_random_voc_images(tmp_path, capsys):
    """--export-end-to-end N writes N random VOC-layout images once (kept
    in --export-data), exports every one through the config's
    val_dataloader and reports the rate."""
    data = tmp_path / 'random_voc'
    out = tmp_path / 'figures.json'
    argv = [TINY, '--phase', 'export', '--iters', '1', '--warmup', '0',
            '--no-flops', '--export-batch-size', '2',
            '--export-image-size', '20', '30', '--export-end-to-end', '5',
            '--export-num-workers', '0', '--export-data', str(data),
            '--out', str(out)]
    load_tool('benchmark').main(argv)
    assert 'whole export' in capsys.readouterr().out
    whole = json.loads(out.read_text())['export_end_to_end']
    assert whole['num_images'] == 5 and whole['images_per_s'] > 0
    assert (whole['batch_size'], whole['num_workers']) == (2, 0)
    assert whole['image_size'] == [20, 30]
    images = sorted((data / 'JPEGImages').glob('*.jpg'))
    assert len(images) == 5
    from PIL import Image
    assert Image.open(images[0]).size == (30, 20)
    mask = np.array(Image.open(data / 'SegmentationClass' /
                               (images[0].stem + '.png')))
    assert set(np.unique(mask)) - {0} and mask.max() <= NUM_CLASSES
    # a second run reuses the images; another size gets its own set
    stamp = images[0].stat().st_mtime_ns
    load_tool('benchmark').main(argv)
    assert images[0].stat().st_mtime_ns == stamp
    size_at = argv.index('--export-image-size') + 1
    argv[size_at:size_at + 2] = ['24', '16']
    load_tool('benchmark').main(argv)
    resized = json.loads(out.read_text())['export_end_to_end']
    assert resized['image_size'] == [24, 16]
    images = sorted((data / 'JPEGImages').glob('*.jpg'))
    assert len(images) == 10
    assert {Image.open(p).size for p in images} == {(30, 20), (16, 24)}
