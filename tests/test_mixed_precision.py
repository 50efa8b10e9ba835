"""bf16 autocast keeps SemPLeS's numbers right: on rendered synthetic images,
with the shipped small CLIP and the synthetic config's model, every phase's
losses under ``torch.autocast`` (bfloat16, CPU; ``--amp`` uses the same
autocast on GPUs) agree with fp32."""
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
