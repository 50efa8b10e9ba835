"""Every shipped config parses, and the models of the SemPLeS, CAM and mix
configs build from it (without weight files: those paths are nulled)."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import semples_mm  # noqa: F401
from conftest import REPO_ROOT

CONFIGS = sorted(
    str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / 'configs').rglob('*.py')
    if '_base_' not in p.parts)


def _without_weight_files(model_cfg):
    """Drop local checkpoint paths so the model builds offline."""
    backbone = model_cfg.get('backbone', {})
    backbone.pop('init_cfg', None)
    if model_cfg.get('clip'):
        model_cfg.clip.pretrained = None
    return model_cfg


@pytest.mark.parametrize('path', CONFIGS)
def test_config_parses(path):
    cfg = Config.fromfile(REPO_ROOT / path)
    assert cfg.model.type in ('SemPLeS', 'EncoderDecoder')
    assert 'semples_mm' in cfg.custom_imports['imports']


@pytest.mark.parametrize('path', [
    'configs/semples/synthetic.py', 'configs/cam/cam_tiny_synthetic.py',
    'configs/semples/mix/slm_on_vit_tiny_synthetic.py',
    'configs/semples/mix/deeplabv2_head_r50_synthetic.py'
])
def test_small_models_build_and_run(path):
    cfg = Config.fromfile(REPO_ROOT / path)
    init_default_scope('mmseg')
    model = MODELS.build(_without_weight_files(cfg.model))
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64), mode='tensor')
    out = out[0] if isinstance(out, tuple) else out
    assert out.shape[0] == 2 and out.shape[1] in (5, 6)
    if cfg.model.type == 'SemPLeS':
        assert model.total_iters == cfg.train_cfg.max_iters


def test_voc_and_coco_keep_the_authors_weights():
    voc = Config.fromfile(REPO_ROOT / 'configs/semples/voc.py')
    coco = Config.fromfile(REPO_ROOT / 'configs/semples/coco.py')
    assert (voc.model.match_loss.bg_weight, voc.model.prompt_loss.text_weight,
            voc.model.refine_loss.loss_weight) == (2.4, 0.02, 0.05)
    assert (coco.model.match_loss.bg_weight,
            coco.model.prompt_loss.text_weight,
            coco.model.refine_loss.loss_weight) == (0.75, 0.01, 0.2)
    assert voc.model.class_names[14] == 'player'  # the authors' text
    assert len(coco.model.class_names) == 80
    assert voc.optim_wrapper.cam.optimizer.weight_decay == 0.03
