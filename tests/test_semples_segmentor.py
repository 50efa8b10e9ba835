"""SemPLeS segmentor: gradient routing per phase, the loss formulas by hand,
phase starts by iteration (CAM snapshot / restore, fresh optimizers), its
state in checkpoints, the two-optimizer constructor and the train step,
alone and inside mmengine's per-part DDP.

Every model is built from tests/data/configs/tiny_semples.py (ResNetV1c-18 at
width 8 on 32x32 inputs, randomly initialised 'semples-synthetic-tiny'
CLIP), as a user's config would build it.
"""
import copy
import io
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper, OptimWrapperDict, build_optim_wrapper
from mmengine.registry import DefaultScope, init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import semples_mm  # noqa: F401  (registers)
from conftest import (TEST_CONFIGS, TINY_GRAD_SUMS, TINY_LOSS_SUMS,
                      free_port)
from float_compare import assert_close_up_to_rounding, rounding_tolerance

init_default_scope('mmseg')
CFG = Config.fromfile(str(TEST_CONFIGS / 'tiny_semples.py'))
NAMES = ('boat', 'plane', 'train', 'cow', 'bird')
CAM_NET = ('backbone', 'cam_head')
NAMES_OF_PHASES = ('cam', 'match', 'prompt', 'refine')
SIM_MIN, SIM_MAX = 1e-4, 0.9999


def build_model(seed=0, **overrides):
    """SemPLeS from the tiny config; ``overrides`` replace model keys."""
    cfg = copy.deepcopy(CFG.model)
    cfg.update(overrides)
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(cfg)


def model_in_phase(phase, training=True):
    """:func:`build_model` in train (or eval) mode, computing ``phase``'s
    loss."""
    model = build_model()
    model.train(training)
    model.set_phase(phase)
    return model


def make_batch(labels, seed=0, size=32):
    """Normalised inputs (B, 3, size, size) and SegDataSamples holding the
    multi-hot ``labels`` (B, K) as ``gt_class_labels``."""
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.randn(len(labels), 3, size, size, generator=gen)
    return inputs, make_samples(labels, size)


def make_samples(labels, size=32):
    samples = []
    for i, row in enumerate(labels):
        sample = SegDataSample(metainfo=dict(
            img_shape=(size, size), ori_shape=(size, size),
            pad_shape=(size, size), img_id=f'img_{i}'))
        sample.set_field(torch.tensor(row, dtype=torch.float32),
                         'gt_class_labels')
        samples.append(sample)
    return samples


LABELS = [[1, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 0],
          [0, 1, 0, 0, 1]]


def params_of(model, names):
    return [(f'{name}.{key}', p) for name in names
            for key, p in getattr(model, name).named_parameters()]


def cam_state(model):
    return {f'{name}.{key}': value.detach().clone() for name in CAM_NET
            for key, value in getattr(model, name).state_dict().items()}


def assert_states_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def states_differ(a, b):
    return any(not torch.equal(a[k], b[k]) for k in a)


def sgd_step(model, inputs, samples, lr=0.5):
    """One plain SGD step of the current phase's loss on the CAM network."""
    params = [p for _, p in params_of(model, CAM_NET)]
    model.zero_grad(set_to_none=True)
    losses = model.loss(inputs, samples)
    sum(losses.values()).backward()
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p -= lr * p.grad
    model.zero_grad(set_to_none=True)


# ------------------------------------------------------ gradient routing
def _grad_norms(model, names):
    return {key: (None if p.grad is None else float(p.grad.abs().sum()))
            for key, p in params_of(model, names)}


@pytest.mark.parametrize('phase, loss_keys', [
    ('cam', {'loss_cls'}),
    ('match', {'loss_match'}),
    ('prompt', {'loss_prompt'}),
    ('refine', {'loss_match', 'loss_refine'}),
])
def test_gradients_reach_only_the_phase_parameters(phase, loss_keys):
    model = model_in_phase(phase)
    inputs, samples = make_batch(LABELS)
    running_mean = model.backbone.stem[1].running_mean.clone()

    losses = model.loss(inputs, samples)
    assert set(losses) == loss_keys
    for key, value in losses.items():
        assert value.dim() == 0 and torch.isfinite(value), (key, value)
    sum(losses.values()).backward()

    cam_grads = _grad_norms(model, CAM_NET)
    ctx_grad = model.prompt_learner.ctx.grad
    # The frozen CLIP never learns, whatever the phase.
    assert not any(p.requires_grad for p in model.clip.parameters())
    assert all(p.grad is None for p in model.clip.parameters())
    assert not model.clip.training
    if phase == 'prompt':
        assert all(g is None for g in cam_grads.values()), cam_grads
        assert ctx_grad is not None and ctx_grad.abs().sum() > 0
        # The CAM network is frozen in eval mode: its BN statistics stay.
        assert not any(getattr(model, m).training for m in CAM_NET)
        torch.testing.assert_close(model.backbone.stem[1].running_mean,
                                   running_mean, rtol=0, atol=0)
    else:
        assert ctx_grad is None
        assert all(getattr(model, m).training for m in CAM_NET)
        assert any(g for g in cam_grads.values()), cam_grads
        assert model.cam_head.classifier.weight.grad.abs().sum() > 0
        # a backbone parameter deep in the network learns too
        assert model.backbone.layer4[1].conv2.weight.grad.abs().sum() > 0


@pytest.mark.float_compare
def test_cam_phase_is_the_classification_loss():
    model = model_in_phase('cam')
    inputs, samples = make_batch(LABELS)
    losses = model.loss(inputs, samples)
    _, logits = model.cam_head(model.extract_feat(inputs))
    labels = torch.tensor(LABELS, dtype=torch.float32)
    expected = F.multilabel_soft_margin_loss(logits, labels)
    torch.testing.assert_close(losses['loss_cls'], expected)


# ----------------------------------------------------- formulas by hand
def _hand_masks(model, inputs, eps):
    """M_k: ReLU, bilinear to the input size, per-map min-max with eps."""
    cams = F.relu(model.predict_cams(inputs))
    cams = F.interpolate(cams, size=inputs.shape[-2:], mode='bilinear',
                         align_corners=False)
    low = cams.amin(dim=(2, 3), keepdim=True)
    high = cams.amax(dim=(2, 3), keepdim=True)
    return (cams - low) / (high - low + eps)


def _hand_pairs(model, inputs, labels, eps):
    """Foreground/background crops of the present pairs, in label order."""
    masks = _hand_masks(model, inputs, eps)
    fg, bg, classes = [], [], []
    for b, row in enumerate(labels):
        for k, present in enumerate(row):
            if present:
                fg.append(masks[b, k] * inputs[b])
                bg.append((1 - masks[b, k]) * inputs[b])
                classes.append(k)
    return torch.stack(fg), torch.stack(bg), classes


def _cos(a, b):
    return F.cosine_similarity(a, b, dim=-1).clamp(SIM_MIN, SIM_MAX)


def _hand_match_loss(model, inputs, labels, eps=0.1):
    fg, bg, classes = _hand_pairs(model, inputs, labels, eps)
    text = model.clip.encode_text(
        [f'a photo of {NAMES[k]}.' for k in classes])
    fg_sim = _cos(model.clip.encode_image(fg), text)
    bg_sim = _cos(model.clip.encode_image(bg), text)
    return (-torch.log(fg_sim)).mean() + 2.4 * (-torch.log(1 - bg_sim)).mean()


@pytest.mark.float_compare
def test_match_loss_is_the_formula():
    model = build_model()
    model.eval()  # same BN statistics in both computations
    model.set_phase('match')
    inputs, samples = make_batch(LABELS)
    with torch.no_grad():
        got = model.loss(inputs, samples)['loss_match']
        expected = _hand_match_loss(model, inputs, LABELS)
        # The check is sharp enough to see the mask eps of another phase.
        other_eps = _hand_match_loss(model, inputs, LABELS, eps=1e-4)
    assert_close_up_to_rounding(got, expected, **TINY_LOSS_SUMS)
    assert (other_eps - expected).abs() > rounding_tolerance(
        **TINY_LOSS_SUMS) * expected.abs()


@pytest.mark.float_compare
def test_prompt_and_refine_losses_are_the_formulas():
    model = model_in_phase('prompt', training=False)
    inputs, samples = make_batch(LABELS)
    with torch.no_grad():
        got = model.loss(inputs, samples)['loss_prompt']
        fg, bg, classes = _hand_pairs(model, inputs, LABELS, eps=1e-4)
        prompts = model.clip.encode_prompts(model.prompt_learner.ctx)
        pair_prompts = prompts[classes]
        text = model.clip.encode_text(
            [f'a photo of {NAMES[k]}.' for k in classes])
        bg_sim = _cos(model.clip.encode_image(bg), pair_prompts)
        text_sim = _cos(text, pair_prompts)
        expected = (-torch.log(bg_sim)).mean() + \
            0.02 * torch.log(text_sim).mean()
    assert_close_up_to_rounding(got, expected, **TINY_LOSS_SUMS)

    model.set_phase('refine')
    with torch.no_grad():
        got = model.loss(inputs, samples)
        fg, _, classes = _hand_pairs(model, inputs, LABELS, eps=0.1)
        fg_sim = _cos(model.clip.encode_image(fg), prompts[classes])
        expected_refine = 0.05 * (-torch.log(1 - fg_sim)).mean()
        expected_match = _hand_match_loss(model, inputs, LABELS)
    assert_close_up_to_rounding(got['loss_refine'], expected_refine,
                                **TINY_LOSS_SUMS)
    assert_close_up_to_rounding(got['loss_match'], expected_match,
                                **TINY_LOSS_SUMS)


@pytest.mark.float_compare
def test_refine_encodes_the_frozen_prompts_once_per_prompt_value(
        monkeypatch):
    """The refine phase reuses its prompt features until the prompts are
    written (in place, or by loading a checkpoint), and its loss stays the
    formula with the current prompts."""
    model = model_in_phase('refine', training=False)
    inputs, samples = make_batch(LABELS)
    calls = []
    encode = model.clip.encode_prompts
    monkeypatch.setattr(model.clip, 'encode_prompts',
                        lambda ctx: calls.append(1) or encode(ctx))

    def hand_refine_loss():
        with torch.no_grad():
            fg, _, classes = _hand_pairs(model, inputs, LABELS, eps=0.1)
            prompts = encode(model.prompt_learner.ctx)
            fg_sim = _cos(model.clip.encode_image(fg), prompts[classes])
            return 0.05 * (-torch.log(1 - fg_sim)).mean()

    with torch.no_grad():
        first = model.loss(inputs, samples)['loss_refine']
        again = model.loss(inputs, samples)['loss_refine']
    assert len(calls) == 1
    torch.testing.assert_close(again, first, rtol=0, atol=0)
    with torch.no_grad():
        model.prompt_learner.ctx.mul_(-1.5)  # an in-place write
        written = model.loss(inputs, samples)['loss_refine']
    assert len(calls) == 2
    assert_close_up_to_rounding(written, hand_refine_loss(),
                                **TINY_LOSS_SUMS)
    assert (written - first).abs() > rounding_tolerance(
        **TINY_LOSS_SUMS) * first.abs()
    model.prompt_learner.load_state_dict(
        build_model(seed=3).prompt_learner.state_dict())
    with torch.no_grad():
        loaded = model.loss(inputs, samples)['loss_refine']
    assert len(calls) == 3
    assert_close_up_to_rounding(loaded, hand_refine_loss(),
                                **TINY_LOSS_SUMS)


@pytest.mark.float_compare
def test_unlabelled_images_add_no_pair():
    """An image without labels changes nothing: the loss over the batch
    equals the loss over the labelled images alone."""
    model = model_in_phase('match', training=False)
    inputs, samples = make_batch(LABELS)
    keep = [0, 1, 3]
    with torch.no_grad():
        whole = model.loss(inputs, samples)['loss_match']
        part = model.loss(inputs[keep], [samples[i] for i in keep])
    # other batches of the CAM network's 19 convolutions (the longest
    # 64 x 3 x 3 = 576 inputs), its head and the upsampling come first
    assert_close_up_to_rounding(whole, part['loss_match'], terms=576,
                                depth=TINY_LOSS_SUMS['depth'] + 21)


@pytest.mark.float_compare
@pytest.mark.parametrize('phase', ['match', 'prompt', 'refine'])
def test_batch_without_any_label_gives_a_trainable_zero(phase):
    """design.md: P = 0 -> differentiable 0. The step must not crash (a
    backward through a loss that needs no grad raises)."""
    model = model_in_phase(phase)
    inputs, samples = make_batch([[0] * 5, [0] * 5])
    losses = model.loss(inputs, samples)
    total = sum(losses.values())
    assert torch.isfinite(total) and float(total) == 0.0
    assert total.requires_grad
    total.backward()


def test_missing_labels_raise_clear_error():
    model = build_model()
    inputs, _ = make_batch(LABELS)
    samples = [SegDataSample(metainfo=dict(img_shape=(32, 32)))
               for _ in LABELS]
    with pytest.raises(KeyError, match='PackWSSSInputs'):
        model.loss(inputs, samples)


# ------------------------------------------------------ phase switching
def build_wrappers(model):
    with DefaultScope.overwrite_default_scope('mmseg'):
        return build_optim_wrapper(model, copy.deepcopy(CFG.optim_wrapper))


def at_iteration(iteration, max_iters=13):
    """Set the iteration train_step reads, as the Runner's
    RuntimeInfoHook does before every step."""
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', iteration)
    hub.update_info('max_iters', max_iters)


def train_iterations(model, wrappers, iterations, data):
    for i in iterations:
        at_iteration(i)
        model.train_step(data, wrappers)


def test_refine_restarts_from_the_end_of_cam_weights():
    """tiny_semples.py: cam 0-3, match 4-6, prompt 7-9, refine 10-12."""
    model = build_model()
    model.train()
    wrappers = build_wrappers(model)
    data = _batch_data(LABELS)
    initial = cam_state(model)
    train_iterations(model, wrappers, range(4), data)
    assert model.phase == 'cam' and model.cam_snapshot.as_dict() is None
    end_of_cam = cam_state(model)
    assert states_differ(initial, end_of_cam)

    train_iterations(model, wrappers, [4], data)  # match starts
    assert model.phase == 'match'
    assert_states_equal(model.cam_snapshot.as_dict(), end_of_cam)
    train_iterations(model, wrappers, [5, 6], data)
    end_of_match = cam_state(model)
    assert states_differ(end_of_match, end_of_cam)
    # the snapshot is a copy, not a view of the trained weights
    assert_states_equal(model.cam_snapshot.as_dict(), end_of_cam)

    ctx = model.prompt_learner.ctx.detach().clone()
    train_iterations(model, wrappers, [7, 8, 9], data)
    assert_states_equal(cam_state(model), end_of_match)  # prompt: no restore
    learnt = model.prompt_learner.ctx.detach().clone()
    assert not torch.equal(learnt, ctx)

    model.enter_iteration(10, wrappers)  # refine starts
    assert model.phase == 'refine'
    assert_states_equal(cam_state(model), end_of_cam)
    # the prompts are kept, only the CAM network restarts
    torch.testing.assert_close(model.prompt_learner.ctx, learnt, rtol=0,
                               atol=0)
    assert all(getattr(model, m).training for m in CAM_NET)
    # Inside a phase nothing restarts.
    train_iterations(model, wrappers, [10], data)
    refined = cam_state(model)
    assert states_differ(refined, end_of_cam)
    model.enter_iteration(11, wrappers)
    assert_states_equal(cam_state(model), refined)


def test_each_phase_starts_its_optimizer_afresh():
    model = build_model()
    model.train()
    wrappers = build_wrappers(model)
    data = _batch_data(LABELS)
    train_iterations(model, wrappers, range(4), data)
    assert len(wrappers['cam'].optimizer.state) > 0
    model.enter_iteration(4, wrappers)  # match starts: AdamW moments go
    assert len(wrappers['cam'].optimizer.state) == 0
    train_iterations(model, wrappers, [4], data)
    model.enter_iteration(5, wrappers)  # inside match: they stay
    assert len(wrappers['cam'].optimizer.state) > 0


def test_set_phase_checks_names_and_train_step_needs_an_iteration():
    model = build_model()
    model.set_phase('match')
    assert model.phase == 'match'
    with pytest.raises(ValueError, match="no phase 'warmup'"):
        model.set_phase('warmup')
    MessageHub.get_instance('no_iteration_yet')  # a hub without 'iter'
    with pytest.raises(RuntimeError, match="reads the iteration"):
        model.train_step(_batch_data(LABELS), build_wrappers(model))


def test_phase_schedule_arithmetic():
    schedule = build_model().schedule  # cam 4, match 3, prompt 3, refine 3
    assert schedule.total_iters == 13
    expected = ['cam'] * 4 + ['match'] * 3 + ['prompt'] * 3 + ['refine'] * 3
    assert [schedule.at(i).name for i in range(13)] == expected
    assert schedule.at(13).name == 'refine'  # past the end: the last phase
    assert {p.name: (p.start, p.end) for p in schedule} == dict(
        cam=(0, 4), match=(4, 7), prompt=(7, 10), refine=(10, 13))
    # the optimizer and lr factor each phase names in the config
    assert [(p.optimizer, p.lr_mult) for p in schedule] == [
        ('cam', 1.0), ('cam', 0.1), ('prompt', 1.0), ('cam', 0.1)]
    assert schedule.optimizers == ('cam', 'prompt')
    with pytest.raises(KeyError, match="no phase 'match'"):
        build_model(phases=[dict(name='cam', iters=2, optimizer='cam')],
                    clip=None).schedule['match']


def test_learning_rates_by_hand():
    """A 3-epoch phase of 6 iterations (2 per epoch), cosine to 0."""
    from semples_mm.models.segmentors import PhaseSchedule
    phases = [dict(name='match', iters=6, optimizer='cam', epochs=3)]
    half = 0.5 * (1 + math.cos(math.pi / 3))  # f(1) = 0.75
    # per iteration: t = i / 2 epochs of 3
    smooth = PhaseSchedule(phases)
    assert [smooth.lr_factor(i) for i in range(6)] == pytest.approx(
        [0.5 * (1 + math.cos(math.pi * i / 6)) for i in range(6)])
    # the authors' timm scheduler, stepped after each epoch: epochs 0 and 1
    # at f(0) = 1, epoch 2 at f(1)
    stepped = PhaseSchedule(phases, dict(by_epoch=True))
    assert [stepped.lr_factor(i) for i in range(6)] == pytest.approx(
        [1, 1, 1, 1, half, half])
    # WeakTr's: one warm-up epoch from 0.1 (f(0) = 0.1), the cosine not
    # shifted by it, ending at eta_min_ratio 0.2
    warm = PhaseSchedule(phases, dict(by_epoch=True, warmup_epochs=1,
                                      warmup_ratio=0.1, eta_min_ratio=0.2))
    assert [warm.lr_factor(i) for i in range(6)] == pytest.approx(
        [0.1, 0.1, 0.1, 0.1, 0.2 + 0.8 * half, 0.2 + 0.8 * half])
    # lr_mult scales all of it; constant ignores the position
    mult = [dict(phases[0], lr_mult=0.5)]
    assert PhaseSchedule(mult, dict(by_epoch=True)).lr_factor(5) == \
        pytest.approx(0.5 * half)
    assert PhaseSchedule(mult, dict(policy='constant')).lr_factor(5) == 0.5


@pytest.mark.parametrize('phase, lr_schedule, match', [
    (dict(epochs=4), None, 'divides its iters=6'),
    (dict(epochs=0), None, 'epochs=0'),
    (dict(), dict(by_epoch=True), 'give no epochs'),
    (dict(), dict(warmup_epochs=2), 'give no epochs'),
    (dict(epochs=3), dict(warmup_ratio=2), 'warmup_ratio'),
    (dict(epochs=3), dict(step='epoch'), r"unknown key\(s\) \['step'\]"),
])
def test_invalid_learning_rate_schedules_raise(phase, lr_schedule, match):
    from semples_mm.models.segmentors import PhaseSchedule
    with pytest.raises(ValueError, match=match):
        PhaseSchedule([dict(name='cam', iters=6, optimizer='cam', **phase)],
                      lr_schedule)


def _phase(name, **kwargs):
    return dict(dict(name=name, iters=2, optimizer='cam'), **kwargs)


@pytest.mark.parametrize('phases, match', [
    ([_phase('match'), _phase('cam')], 'order'),
    ([_phase('cam'), _phase('cam')], 'order'),
    ([_phase('warmup')], 'warmup'),
    ([_phase('cam', iters=0)], 'positive'),
    ([_phase('cam', iters=2.5)], 'positive'),
    ([dict(name='cam', optimizer='cam')], 'positive'),
    ([dict(name='cam', iters=2)], 'must name the optimizer'),
    ([_phase('cam', lr_mult=0)], 'lr_mult=0'),
    ([_phase('cam', lr=1.0)], r"unknown key\(s\) \['lr'\]"),
    ([], 'order'),
])
def test_invalid_phases_raise(phases, match):
    with pytest.raises(ValueError, match=match):
        build_model(phases=phases)


def test_missing_parts_raise():
    with pytest.raises(ValueError, match='model.clip'):
        build_model(clip=None)
    with pytest.raises(ValueError, match='model.prompt_learner'):
        build_model(prompt_learner=None)
    with pytest.raises(ValueError, match='model.refine_loss'):
        build_model(refine_loss=None)
    # the head's class count follows the class names unless it is given
    assert 'num_classes' not in CFG.model.cam_head
    four = build_model(class_names=NAMES[:4], prompt_learner=None,
                       phases=[_phase('cam', iters=3)], clip=None,
                       match_loss=None, prompt_loss=None, refine_loss=None)
    assert four.cam_head.num_classes == 4
    with pytest.raises(ValueError, match='class_names has 4 names but '
                       'cam_head.num_classes is 5'):
        build_model(class_names=NAMES[:4],
                    cam_head=dict(CFG.model.cam_head, num_classes=5))
    # A CAM-only model needs no CLIP.
    cam_only = build_model(phases=[_phase('cam', iters=3)], clip=None,
                           prompt_learner=None, match_loss=None,
                           prompt_loss=None, refine_loss=None)
    assert cam_only.clip is None and cam_only.schedule.total_iters == 3
    # phases given as a subset: match alone needs CLIP and the match loss
    with pytest.raises(ValueError, match='model.match_loss'):
        build_model(phases=[_phase('match')], match_loss=None)
    # the prompts must learn the model's classes, in its order
    with pytest.raises(ValueError, match='prompt_learner.class_names'):
        build_model(prompt_learner=dict(CFG.model.prompt_learner,
                                        class_names=NAMES[::-1]))


# -------------------------------------------------- state in checkpoints
def test_snapshot_survives_a_state_dict_round_trip():
    model = build_model(seed=0)
    model.train()
    wrappers = build_wrappers(model)
    data = _batch_data(LABELS)
    train_iterations(model, wrappers, range(5), data)  # into match
    end_of_cam = model.cam_snapshot.as_dict()
    assert end_of_cam is not None

    # Through bytes, loaded the way torch >= 2.6 loads by default.
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    # every entry a tensor: mmengine broadcasts them at distributed start
    assert all(torch.is_tensor(value) for value in state.values())

    fresh = build_model(seed=1)
    assert fresh.cam_snapshot.as_dict() is None
    assert states_differ(cam_state(fresh), cam_state(model))
    fresh.load_state_dict(state)
    assert_states_equal(fresh.cam_snapshot.as_dict(), end_of_cam)
    assert_states_equal(cam_state(fresh), cam_state(model))
    # The restored model enters refine from the end-of-cam weights, as the
    # uninterrupted one does.
    fresh.enter_iteration(10, build_wrappers(fresh))
    model.enter_iteration(10, wrappers)
    assert_states_equal(cam_state(fresh), end_of_cam)
    assert_states_equal(cam_state(model), end_of_cam)


def test_leaving_cam_again_takes_a_new_snapshot():
    """A model loaded from a finished run (mmengine ``load_from``) carries
    that run's snapshot; training it again from ``cam`` must snapshot its
    own end-of-cam weights when ``cam`` ends, not keep the old ones."""
    data = _batch_data(LABELS)
    old = build_model(seed=0)
    old.train()
    train_iterations(old, build_wrappers(old), [0, 4], data)

    model = build_model(seed=1)
    model.load_state_dict(old.state_dict())
    assert_states_equal(model.cam_snapshot.as_dict(),
                        old.cam_snapshot.as_dict())
    model.train()
    wrappers = build_wrappers(model)
    train_iterations(model, wrappers, range(4), data)
    end_of_cam = cam_state(model)
    assert states_differ(end_of_cam, old.cam_snapshot.as_dict())
    model.enter_iteration(4, wrappers)
    assert_states_equal(model.cam_snapshot.as_dict(), end_of_cam)


def test_a_run_without_cam_restarts_refine_from_where_it_began():
    """No cam phase (the authors' runs start from a trained WeakTr): the
    weights the run begins with are the snapshot, unless the loaded
    weights bring one (a rerun of prompt and refine from a finished run)."""
    phases = [_phase('match'), _phase('prompt', optimizer='prompt'),
              _phase('refine')]
    data = _batch_data(LABELS)
    model = build_model(phases=phases)
    model.train()
    wrappers = build_wrappers(model)
    begin = cam_state(model)
    for i in range(2):
        at_iteration(i, max_iters=6)
        model.train_step(data, wrappers)
    assert_states_equal(model.cam_snapshot.as_dict(), begin)
    model.enter_iteration(4, wrappers)
    assert_states_equal(cam_state(model), begin)

    brought = {k: v + 1 for k, v in begin.items()}
    rerun = build_model(phases=phases)
    rerun.cam_snapshot.store(brought)
    rerun.enter_iteration(0, build_wrappers(rerun))
    assert_states_equal(rerun.cam_snapshot.as_dict(), brought)


def test_state_dict_before_any_phase_loads():
    fresh = build_model(seed=1)
    fresh.load_state_dict(build_model(seed=0).state_dict())
    assert fresh.phase is None and fresh.cam_snapshot.as_dict() is None


def test_checkpoints_of_before_the_snapshot_was_a_tensor_load():
    """Checkpoints written when phase and snapshot were extra state (and
    the prompts' class names too) still load, snapshot included."""
    model = build_model(seed=0)
    end_of_cam = cam_state(model)
    state = {k: v for k, v in model.state_dict().items()
             if not k.startswith('cam_snapshot.')
             and k != 'prompt_learner.class_names_utf8'}
    state['_extra_state'] = dict(phase='match', cam_snapshot=end_of_cam)
    state['prompt_learner._extra_state'] = dict(class_names=list(NAMES))
    fresh = build_model(seed=1)
    fresh.load_state_dict(state)
    assert_states_equal(fresh.cam_snapshot.as_dict(), end_of_cam)
    state['prompt_learner._extra_state'] = dict(class_names=['a'] * 5)
    with pytest.raises(ValueError, match="learnt for classes"):
        build_model().load_state_dict(state)


# --------------------------------------------- optimizers per module group
def _param_ids(params):
    return {id(p) for p in params}


def _optimizer_ids(wrapper):
    return {id(p) for group in wrapper.optimizer.param_groups
            for p in group['params']}


def test_module_groups_constructor_splits_the_model():
    model = build_model()
    with DefaultScope.overwrite_default_scope('mmseg'):
        wrappers = build_optim_wrapper(model, copy.deepcopy(CFG.optim_wrapper))
    assert isinstance(wrappers, OptimWrapperDict)
    assert set(wrappers.keys()) == {'cam', 'prompt'}
    cam_ids = _param_ids(p for _, p in params_of(model, CAM_NET))
    assert _optimizer_ids(wrappers['cam']) == cam_ids
    assert _optimizer_ids(wrappers['prompt']) == {id(model.prompt_learner.ctx)}
    assert not _optimizer_ids(wrappers['cam']) & _param_ids(
        model.clip.parameters())
    assert isinstance(wrappers['cam'].optimizer, torch.optim.AdamW)
    assert wrappers['prompt'].optimizer.defaults['lr'] == 0.025
    assert wrappers['cam'].optimizer.defaults['lr'] == 1e-3


def test_module_groups_paramwise_cfg_uses_model_names():
    model = build_model()
    cfg = copy.deepcopy(CFG.optim_wrapper)
    cfg['cam']['paramwise_cfg'] = dict(
        custom_keys={'cam_head.classifier': dict(lr_mult=10.0)})
    with DefaultScope.overwrite_default_scope('mmseg'):
        wrappers = build_optim_wrapper(model, cfg)
    head = {id(model.cam_head.classifier.weight)}
    lrs = {}
    for group in wrappers['cam'].optimizer.param_groups:
        for p in group['params']:
            lrs[id(p)] = group['lr']
    assert [lrs[i] for i in head] == [pytest.approx(1e-2)]
    assert {v for k, v in lrs.items() if k not in head} == {1e-3}


def test_module_groups_constructor_errors():
    model = build_model()
    cfg = copy.deepcopy(CFG.optim_wrapper)
    cfg['cam']['modules'] = ('backbone', 'cam_head2')
    with DefaultScope.overwrite_default_scope('mmseg'):
        with pytest.raises(AttributeError, match='cam_head2'):
            build_optim_wrapper(model, cfg)
        with pytest.raises(ValueError, match='paramwise_cfg'):
            build_optim_wrapper(model, dict(
                copy.deepcopy(CFG.optim_wrapper),
                paramwise_cfg=dict(norm_decay_mult=0.)))


# --------------------------------------------------------- train steps
def _batch_data(labels, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return dict(
        inputs=[torch.randint(0, 256, (3, 32, 32), generator=gen,
                              dtype=torch.uint8) for _ in labels],
        data_samples=make_samples(labels))


def _snapshot(model):
    prompts = model.prompt_learner  # (maybe inside its DDP wrapper)
    return (model.cam_network_state(),
            getattr(prompts, 'module', prompts).ctx.detach().clone())


def _check_train_step_routing(model, wrappers, step):
    data = _batch_data(LABELS)
    model.train()
    for phase in model.schedule:
        at_iteration(phase.start + 1)  # inside the phase
        cams, ctx = _snapshot(model)
        log_vars = step(data, wrappers)
        assert model.phase == phase.name
        assert {'loss', 'cam.lr', 'prompt.lr'} < set(log_vars)
        new_cams, new_ctx = _snapshot(model)
        weights_changed = any(
            not torch.equal(cams[k], new_cams[k]) for k in cams
            if k.endswith('weight'))
        if phase.name == 'prompt':
            assert not weights_changed
            assert_states_equal(cams, new_cams)  # BN statistics too
            assert not torch.equal(ctx, new_ctx)
        else:
            assert weights_changed, phase
            torch.testing.assert_close(ctx, new_ctx, rtol=0, atol=0)


def test_train_step_steps_the_phase_optimizer():
    model = build_model()
    _check_train_step_routing(model, build_wrappers(model), model.train_step)


def test_phase_optim_wrapper_errors():
    model = build_model()
    single = OptimWrapper(torch.optim.SGD(model.cam_head.parameters(), lr=1))
    # a plain wrapper serves only schedules that step one optimizer
    with pytest.raises(TypeError, match=r"step \('cam', 'prompt'\)"):
        model.enter_iteration(5, single)
    with pytest.raises(KeyError, match='optim_wrapper.prompt'):
        model.enter_iteration(8, OptimWrapperDict(cam=single))
    cam_only = build_model(phases=[_phase('cam'), _phase('match')])
    assert cam_only.enter_iteration(3, single) is single


def test_separate_ddp_calls_the_models_train_step(monkeypatch):
    """mmengine's MMSeparateDistributedDataParallel, as the shipped configs
    name it, in a one-process gloo group: each trainable part in its own
    DDP, the model's own train_step, state-dict keys without the wrappers'
    'module.' (a checkpoint of several processes loads in one)."""
    import torch.distributed as dist
    from mmengine.model import is_model_wrapper
    from mmengine.registry import MODEL_WRAPPERS as ROOT_WRAPPERS
    assert not dist.is_initialized()
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(free_port()))
    dist.init_process_group('gloo', rank=0, world_size=1)
    try:
        model = build_model()
        plain_keys = list(model.state_dict())
        wrapped = ROOT_WRAPPERS.build(dict(
            CFG.model_wrapper_cfg, module=model, device_ids=None))
        assert type(wrapped).__name__ == 'MMSeparateDistributedDataParallel'
        assert is_model_wrapper(model.backbone)
        assert is_model_wrapper(model.prompt_learner)
        assert not is_model_wrapper(model.clip)  # frozen: not wrapped
        wrappers = build_wrappers(wrapped)
        _check_train_step_routing(model, wrappers, wrapped.train_step)
        assert list(model.state_dict()) == plain_keys
        assert set(model.cam_network_state()) == {
            k for k in plain_keys if k.startswith(CAM_NET)}
        build_model(seed=1).load_state_dict(model.state_dict())
    finally:
        dist.destroy_process_group()


def test_detached_backbone_leaves_only_the_cam_head_learning():
    """``detach_backbone_in`` reproduces the authors' stages 1 and 3, where
    the CAM network's backbone features are detached."""
    model = build_model(detach_backbone_in=('match', ))
    model.train()
    model.set_phase('match')
    inputs, samples = make_batch(LABELS)
    sum(model.loss(inputs, samples).values()).backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert model.cam_head.classifier.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='detach_backbone_in'):
        build_model(detach_backbone_in=('stage1', ))


def _conv_weights(model):
    return [(name, module.weight) for name, module in model.named_modules()
            if isinstance(module, torch.nn.Conv2d)
            and not name.startswith('clip.')]


@pytest.mark.float_compare
def test_channels_last_keeps_the_losses_and_the_memory_order():
    plain = build_model()
    fast = build_model(channels_last=True)
    fast.init_weights()  # the Runner's initialisation must keep the order
    fast.load_state_dict(plain.state_dict())
    convs = _conv_weights(fast)
    assert len(convs) > 10
    for name, weight in convs:
        assert weight.is_contiguous(memory_format=torch.channels_last), name
    assert not _conv_weights(plain)[1][1].is_contiguous(
        memory_format=torch.channels_last)
    inputs, samples = make_batch(LABELS)
    for phase in ('cam', 'match'):
        for model in (plain, fast):
            model.train()
            model.set_phase(phase)
            model.zero_grad(set_to_none=True)
            sum(model.loss(inputs, samples).values()).backward()
        for (name, a), (_, b) in zip(params_of(plain, CAM_NET),
                                     params_of(fast, CAM_NET)):
            # The two memory orders sum in different orders in every
            # convolution and batch norm (the stem's over 4 x 16 x 16 = 1024
            # positions), forward and backward: 2 x 41 sums in cam, CLIP's
            # 2 x 22 and the mask upsampling's 2 more in match.
            assert_close_up_to_rounding(
                a.grad, b.grad, terms=1024,
                depth=82 if phase == 'cam' else 128, msg=f'{phase} {name}')
    wrappers = build_wrappers(fast)
    fast.enter_iteration(4, wrappers)  # snapshots the end of cam
    fast.enter_iteration(10, wrappers)  # refine restores it
    assert all(w.is_contiguous(memory_format=torch.channels_last)
               for _, w in _conv_weights(fast))


# ------------------------------------------------- prompt feature cache
def _with_paths(samples, paths):
    for sample, path in zip(samples, paths):
        sample.set_metainfo(dict(img_path=path))
    return samples


def _prompt_loss_and_grad(model, inputs, samples):
    model.prompt_learner.zero_grad()
    losses = model.loss(inputs, samples)
    losses['loss_prompt'].backward()
    return (losses, losses['loss_prompt'].detach(),
            model.prompt_learner.ctx.grad.clone())


@pytest.mark.float_compare
@pytest.mark.parametrize('fg_weight', [0.0, 0.5])
def test_prompt_feature_cache_gives_the_uncached_loss(fg_weight):
    """Cached crop features reproduce the recomputed ones: same loss and
    prompt gradients on a batch that misses, hits, and partly hits (pairs
    reassembled in the right order), and the hit rate is logged."""
    prompt_loss = dict(type='ContrastivePromptLoss', fg_weight=fg_weight)
    plain = build_model(prompt_loss=prompt_loss)
    cached = build_model(prompt_loss=prompt_loss,
                         prompt_crop_features=dict(
                             type='ViewCacheCropFeatures', max_views=100))
    for model in (plain, cached):
        model.set_phase('prompt')
        model.train()
    inputs, samples = make_batch(LABELS)
    _with_paths(samples, [f'a{i}.png' for i in range(len(LABELS))])
    # Views 3 and 1 seen before, then a new one: ordered unlike the cache.
    labels2 = [LABELS[3], [1, 1, 0, 0, 1], LABELS[1]]
    new_inputs, samples2 = make_batch(labels2, seed=1)
    inputs2 = torch.stack([inputs[3], new_inputs[1], inputs[1]])
    _with_paths(samples2, ['a3.png', 'b1.png', 'a1.png'])

    for batch, expected_hit_rate in (((inputs, samples), 0.0),
                                     ((inputs, samples), 1.0),
                                     ((inputs2, samples2), 2 / 3)):
        _, want_loss, want_grad = _prompt_loss_and_grad(plain, *batch)
        losses, got_loss, got_grad = _prompt_loss_and_grad(cached, *batch)
        # Features computed in another batch differ in the last bits.
        assert_close_up_to_rounding(got_loss, want_loss, **TINY_LOSS_SUMS)
        assert_close_up_to_rounding(got_grad, want_grad, **TINY_GRAD_SUMS)
        assert losses['prompt_cache_hit_rate'].item() == pytest.approx(
            expected_hit_rate)
    assert len(cached.crop_features) == len(LABELS) + 1


def test_prompt_feature_cache_tells_views_apart():
    model = build_model(prompt_crop_features=dict(
                             type='ViewCacheCropFeatures', max_views=100))
    model.set_phase('prompt')
    cache = model.crop_features
    inputs, samples = make_batch(LABELS)
    _with_paths(samples, [f'a{i}.png' for i in range(len(LABELS))])
    with torch.no_grad():
        model.loss(inputs, samples)
        model.loss(inputs.flip(-1), samples)  # the flipped views
        assert (cache.hits, cache.misses) == (0, 2 * len(LABELS))
        _with_paths(samples, [f'c{i}.png' for i in range(len(LABELS))])
        model.loss(inputs, samples)  # same pixels, other files
        assert cache.hits == 0
        model.loss(inputs, samples)  # now seen
        assert cache.hits == len(LABELS)


def test_prompt_feature_cache_is_bounded_and_emptied_after_the_phase():
    model = build_model(prompt_crop_features=dict(
        type='ViewCacheCropFeatures', max_views=3))
    wrappers = build_wrappers(model)
    for start in (4, 7):  # match (the end-of-cam snapshot), then prompt
        model.enter_iteration(start, wrappers)
    inputs, samples = make_batch(LABELS)
    _with_paths(samples, [f'a{i}.png' for i in range(len(LABELS))])
    with torch.no_grad():
        model.loss(inputs, samples)
        assert len(model.crop_features) == 3
        model.loss(inputs[1:], samples[1:])  # the 3 most recent views
        assert model.crop_features.hits == 3
    model.enter_iteration(10, wrappers)  # refine starts
    assert len(model.crop_features) == 0
    with pytest.raises(ValueError, match='max_views'):
        build_model(prompt_crop_features=dict(
            type='ViewCacheCropFeatures', max_views=0))


@pytest.mark.float_compare
def test_predict_cams_of_some_classes_and_a_wrong_class_mask():
    model = model_in_phase('cam', training=False)
    inputs, _ = make_batch(LABELS)
    with torch.no_grad():
        cams = model.predict_cams(inputs)
        classes = torch.tensor([True, False, True, False, True])
        some = model.predict_cams(inputs, classes)
    assert cams.shape[1] == 5 and some.shape[1] == 3
    # the same convolution, its output sliced: bit for bit
    torch.testing.assert_close(some, cams[:, classes], rtol=0, atol=0)
    with pytest.raises(ValueError, match=r'shape \(6,\), but '
                       'cam_head.num_classes is 5'):
        model.predict_cams(inputs, torch.ones(6, dtype=torch.bool))
