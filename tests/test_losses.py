"""SemPLeS losses against hand-computed values."""
import math

import pytest
import torch
from mmseg.registry import MODELS

import semples_mm  # noqa: F401  (registers the losses)

LO, HI = 1e-4, 0.9999


def _t(values):
    return torch.tensor(values, dtype=torch.float64, requires_grad=True)


@pytest.mark.float_compare
def test_segment_label_matching_value():
    loss_fn = MODELS.build(dict(type='SegmentLabelMatchingLoss',
                                bg_weight=2.4))
    assert loss_fn.loss_name == 'loss_match'
    fg = _t([0.3, 0.5, 1.0])  # 1.0 clamps to 0.9999
    bg = _t([0.2, -0.5, 0.0])  # -0.5 and 0 clamp to 1e-4
    loss = loss_fn(fg, bg)
    expected_fg = -(math.log(0.3) + math.log(0.5) + math.log(HI)) / 3
    expected_bg = -(math.log(1 - 0.2) + 2 * math.log(1 - LO)) / 3
    assert loss.item() == pytest.approx(expected_fg + 2.4 * expected_bg,
                                        rel=1e-12)


@pytest.mark.float_compare
def test_segment_label_matching_gradient():
    loss_fn = MODELS.build(dict(type='SegmentLabelMatchingLoss',
                                bg_weight=0.75))
    fg = _t([0.3, 1.0])
    bg = _t([0.2, -0.5])
    loss_fn(fg, bg).backward()
    # d/ds -log(s)/P = -1/(P s); clamped entries get no gradient.
    assert fg.grad.tolist() == pytest.approx([-1 / (2 * 0.3), 0.0])
    # d/ds -w log(1-s)/P = w/(P (1-s))
    assert bg.grad.tolist() == pytest.approx([0.75 / (2 * 0.8), 0.0])


@pytest.mark.float_compare
def test_contrastive_prompt_value():
    loss_fn = MODELS.build(dict(type='ContrastivePromptLoss',
                                text_weight=0.02, fg_weight=0.5))
    assert loss_fn.loss_name == 'loss_prompt'
    bg = _t([0.4, 0.0])  # 0 clamps to 1e-4
    text = _t([0.6, -0.5, 1.0])  # given per class (K = 3), not per pair
    fg = _t([0.1, 1.0])  # 1.0 clamps to 0.9999
    loss = loss_fn(bg, text, fg)
    expected = (-(math.log(0.4) + math.log(LO)) / 2 + 0.02 *
                (math.log(0.6) + math.log(LO) + math.log(HI)) / 3 + 0.5 *
                -(math.log(1 - 0.1) + math.log(1 - HI)) / 2)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    # log s_text with weight +gamma: gradient gamma / (K s).
    assert text.grad[0].item() == pytest.approx(0.02 / (3 * 0.6))
    assert text.grad[1].item() == 0.0
    assert bg.grad[0].item() == pytest.approx(-1 / (2 * 0.4))


@pytest.mark.float_compare
def test_contrastive_prompt_default_ignores_fg_and_needs_it_when_weighted():
    default = MODELS.build(dict(type='ContrastivePromptLoss'))
    bg, text = _t([0.4]), _t([0.6])
    expected = -math.log(0.4) + 0.02 * math.log(0.6)
    assert default(bg, text).item() == pytest.approx(expected)
    assert default(bg, text, _t([0.9])).item() == pytest.approx(expected)
    weighted = MODELS.build(dict(type='ContrastivePromptLoss',
                                 fg_weight=1.0))
    with pytest.raises(ValueError, match='fg_prompt_sim'):
        weighted(bg, text)


@pytest.mark.float_compare
def test_prompt_refinement_value_and_gradient():
    loss_fn = MODELS.build(dict(type='PromptRefinementLoss',
                                loss_weight=0.05, loss_name='loss_psr'))
    assert loss_fn.loss_name == 'loss_psr'
    fg = _t([0.5, -0.5, 1.0, 0.25])
    loss = loss_fn(fg)
    expected = 0.05 * -(math.log(0.5) + math.log(1 - LO) + math.log(1 - HI)
                        + math.log(0.75)) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    assert fg.grad.tolist() == pytest.approx(
        [0.05 / (4 * 0.5), 0.0, 0.0, 0.05 / (4 * 0.75)])


@pytest.mark.float_compare
@pytest.mark.parametrize('cfg, nargs', [
    (dict(type='SegmentLabelMatchingLoss'), 2),
    (dict(type='ContrastivePromptLoss', fg_weight=0.3), 3),
    (dict(type='PromptRefinementLoss'), 1),
])
def test_no_present_pair_gives_differentiable_zero(cfg, nargs):
    loss_fn = MODELS.build(cfg)
    # The empty sims come out of a graph, as in the segmentor (gathering
    # pairs of a batch with no labelled class).
    source = torch.randn(4, requires_grad=True)
    empty = source[torch.zeros(4, dtype=torch.bool)]
    args = [empty] * nargs
    if cfg['type'] == 'ContrastivePromptLoss':
        args[1] = source.tanh()  # per-class text-prompt sims, (K,)
    loss = loss_fn(*args)
    assert loss.dim() == 0
    assert loss.item() == 0.0
    assert loss.requires_grad
    loss.backward()
    assert source.grad is not None
    assert torch.isfinite(source.grad).all()
    assert (source.grad == 0).all()


@pytest.mark.float_compare
def test_losses_are_finite_for_any_cosine():
    sims = torch.linspace(-1, 1, 21, requires_grad=True)
    total = (MODELS.build(dict(type='SegmentLabelMatchingLoss'))(sims, sims)
             + MODELS.build(dict(type='ContrastivePromptLoss',
                                 fg_weight=1.0))(sims, sims, sims)
             + MODELS.build(dict(type='PromptRefinementLoss'))(sims))
    total.backward()
    assert torch.isfinite(total)
    assert torch.isfinite(sims.grad).all()
