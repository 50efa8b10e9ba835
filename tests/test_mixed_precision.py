"""bf16 autocast keeps SemPLeS's numbers right: on rendered synthetic images,
with the shipped small CLIP and the synthetic config's model, every phase's
losses under ``torch.autocast`` (bfloat16, CPU; ``--amp`` uses the same
autocast on GPUs) agree with fp32."""
import copy

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import semples_mm  # noqa: F401  (registers)
from conftest import REPO_ROOT
from semples_mm.datasets.synthetic.world import (SYNTHETIC_CLASSES,
                                                 SyntheticRenderer,
                                                 sample_scene)

CONFIG = REPO_ROOT / 'configs/semples/synthetic.py'


@pytest.fixture(scope='module')
def model_and_batch():
    cfg = Config.fromfile(str(CONFIG))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    model.init_weights()  # the shipped CLIP; a random CAM network
    rng = np.random.default_rng(0)
    renderer = SyntheticRenderer(image_size=64)
    inputs, samples = [], []
    for _ in range(8):
        objects, context = sample_scene(rng)
        image, _ = renderer.render(rng, objects, context)
        # BGR, as LoadImageFromFile gives it to the preprocessor
        inputs.append(torch.from_numpy(image[..., ::-1].copy()).permute(
            2, 0, 1))
        labels = torch.zeros(len(SYNTHETIC_CLASSES))
        labels[objects] = 1
        sample = SegDataSample(metainfo=dict(img_shape=(64, 64),
                                             ori_shape=(64, 64)))
        sample.set_field(labels, 'gt_class_labels')
        samples.append(sample)
    data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples),
                                   True)
    return model, data


@pytest.mark.float_compare
@pytest.mark.parametrize('phase', ['match', 'prompt', 'refine'])
def test_bf16_autocast_losses_agree_with_fp32(model_and_batch, phase):
    model, data = model_and_batch
    for name in ('match', 'prompt', 'refine'):
        model.set_phase(name)
        if name == phase:
            break
    model.train()
    with torch.no_grad():
        fp32 = model.loss(data['inputs'], data['data_samples'])
        cast_dtypes = []
        hook = model.backbone.register_forward_hook(
            lambda module, args, out: cast_dtypes.append(out[-1].dtype))
        with torch.autocast('cpu', dtype=torch.bfloat16):
            bf16 = model.loss(data['inputs'], data['data_samples'])
        hook.remove()
    assert cast_dtypes == [torch.bfloat16]  # autocast did run in bf16
    assert fp32.keys() == bf16.keys()
    for key in fp32:
        assert torch.isfinite(bf16[key]), key
        torch.testing.assert_close(bf16[key].float(), fp32[key], rtol=0.02,
                                   atol=1e-3, msg=key)


def test_enable_amp_picks_the_wrapper_of_the_device():
    from semples_mm.utils.launch import enable_amp
    multi = Config(dict(optim_wrapper=dict(
        constructor='ModuleGroupsOptimWrapperConstructor',
        cam=dict(type='OptimWrapper', optimizer=dict(type='AdamW')),
        prompt=dict(optimizer=dict(type='AdamW')))))
    assert enable_amp(multi, cuda=False) == 'BF16OptimWrapper'
    for name in ('cam', 'prompt'):
        assert multi.optim_wrapper[name].type == 'BF16OptimWrapper'
        assert 'loss_scale' not in multi.optim_wrapper[name]
    single = Config(dict(optim_wrapper=dict(optimizer=dict(type='SGD'))))
    assert enable_amp(single, cuda=True) == 'AmpOptimWrapper'
    assert single.optim_wrapper.loss_scale == 'dynamic'
    odd = Config(dict(optim_wrapper=dict(type='MyWrapper',
                                         optimizer=dict(type='SGD'))))
    with pytest.raises(ValueError, match="got 'MyWrapper'"):
        enable_amp(odd, cuda=False)


def test_bf16_optim_wrapper_trains_in_bf16_and_keeps_fp32_weights(
        model_and_batch):
    """Built from a config dict, one match step: the backbone runs in bf16,
    the weights stay fp32 and change."""
    from mmengine.optim import build_optim_wrapper
    model, data = model_and_batch
    model = copy.deepcopy(model)
    model.set_phase('match')
    model.train()
    with DefaultScope.overwrite_default_scope('mmseg'):
        wrapper = build_optim_wrapper(model, dict(
            type='BF16OptimWrapper', optimizer=dict(type='SGD', lr=0.1)))
    head = model.cam_head.classifier.weight
    before = head.detach().clone()
    cast_dtypes = []
    hook = model.backbone.register_forward_hook(
        lambda module, args, out: cast_dtypes.append(out[-1].dtype))
    with wrapper.optim_context(model):
        losses = model.loss(data['inputs'], data['data_samples'])
    hook.remove()
    wrapper.update_params(sum(losses.values()))
    assert cast_dtypes == [torch.bfloat16]
    assert head.dtype == torch.float32
    assert not torch.equal(head.detach(), before)
