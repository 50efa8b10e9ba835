"""BackgroundPromptLearner: shape, initialisation, class-list checks."""
import io

import pytest
import torch
from mmengine.runner.checkpoint import load_state_dict as mmengine_load
from mmseg.registry import MODELS
from torch import nn

import semples_mm.models.clip  # noqa: F401  (registers)

CLASSES = ['boat', 'plane', 'train']


def build(class_names=CLASSES, **kwargs):
    cfg = dict(type='BackgroundPromptLearner', class_names=class_names,
               length=4, width=8)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def test_forward_is_the_uniform_parameter():
    torch.manual_seed(0)
    learner = build()
    ctx = learner()
    assert ctx.shape == (3, 4, 8)
    assert ctx.requires_grad and ctx.grad_fn is not None  # a view
    assert ctx.data_ptr() == learner.ctx.data_ptr()
    assert ctx.min() >= 0 and ctx.max() < 1
    assert 0.3 < ctx.mean() < 0.7  # U[0, 1), not N(0, 0.02)
    assert list(dict(learner.named_parameters())) == ['ctx']


def test_defaults_follow_the_authors_runs():
    learner = MODELS.build(dict(type='BackgroundPromptLearner',
                                class_names=CLASSES))
    assert learner().shape == (3, 30, 512)


def test_normal_init_and_bad_arguments():
    torch.manual_seed(0)
    assert build(init='normal')().std() < 0.05
    with pytest.raises(ValueError, match='init'):
        build(init='zeros')
    with pytest.raises(ValueError, match='class_names'):
        build(class_names=[])
    with pytest.raises(ValueError, match='length'):
        build(length=0)


def test_roundtrip_through_a_saved_checkpoint():
    source = build()
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # as mmengine resumes
    target = build()
    target.load_state_dict(state)
    torch.testing.assert_close(target.ctx, source.ctx)


@pytest.mark.parametrize('other', [
    ['boat', 'plane', 'cow'],  # another class
    ['plane', 'boat', 'train'],  # same classes, another order
])
def test_loading_prompts_of_other_classes_fails(other):
    state = build(class_names=other).state_dict()
    target = build()
    with pytest.raises(ValueError) as error:
        target.load_state_dict(state)
    message = str(error.value)
    assert str(other) in message and str(CLASSES) in message


def test_mismatch_also_fails_through_mmengine_loading():
    parent = nn.ModuleDict(dict(prompts=build()))
    state = nn.ModuleDict(dict(
        prompts=build(class_names=['a', 'b', 'c']))).state_dict()
    with pytest.raises(ValueError, match="'a', 'b', 'c'"):
        mmengine_load(parent, state, strict=False)
