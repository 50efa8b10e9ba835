"""The final-network configs beyond DeepLabV2: SegFormer (tiny synthetic,
MiT-B1/B5 on VOC and COCO) and Mask2Former Swin-L, built from their
resolved configs as a user's tools/train.py would.

Every build here uses random weights: the configs point at local ImageNet
checkpoints (init_cfg type 'Pretrained') that a test machine does not
have, so the tests set init_cfg to None before building.
"""
import importlib.util
import math

import pytest
import torch
from mmengine.config import Config
from mmengine.config.utils import MODULE2PACKAGE
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmengine.structures import PixelData

import semples_mm  # noqa: F401  (registers datasets, maps mmseg::)
from conftest import REPO_ROOT
from semples_mm import _onedl_config_scopes

CONFIGS = REPO_ROOT / 'configs'

# (config, classes with background, ground-truth folder of val, of train)
VOC = (21, 'SegmentationClass', 'SegmentationClassAug')
COCO = (81, 'SegmentationClass/val2014', 'SegmentationClass/train2014')
SYNTHETIC = (6, 'SegmentationClass', 'SegmentationClass')
SEGFORMER = {
    'segformer/segformer_mit-b1_voc_pseudo.py': VOC,
    'segformer/segformer_mit-b5_voc_pseudo.py': VOC,
    'segformer/segformer_mit-b1_coco_pseudo.py': COCO,
    'segformer/segformer_mit-b5_coco_pseudo.py': COCO,
    'segformer/segformer_tiny_synthetic_pseudo.py': SYNTHETIC,
}
MASK2FORMER = {
    'mask2former/mask2former_swin-l_voc_pseudo.py': VOC,
    'mask2former/mask2former_swin-l_coco_pseudo.py': COCO,
}


def _load(relative):
    # Mask2Former's custom_imports name mmdet.models, which this CPU stack
    # cannot import (see test_mask2former_head_needs_mmdetection): read the
    # settings without importing it.
    return Config.fromfile(str(CONFIGS / relative),
                           import_custom_modules=False)


def _build_random(model_cfg):
    model_cfg.backbone.init_cfg = None  # no checkpoint files in tests
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(model_cfg)


@pytest.mark.parametrize('relative', sorted({**SEGFORMER, **MASK2FORMER}))
def test_trains_on_pseudo_masks_validates_on_ground_truth(relative):
    num_classes, val_truth, train_truth = {**SEGFORMER,
                                           **MASK2FORMER}[relative]
    cfg = _load(relative)
    assert cfg.model.decode_head.num_classes == num_classes
    train = cfg.train_dataloader.dataset
    assert train.data_prefix.seg_map_path == cfg.pseudo_mask_dir
    # image labels still come from the ground truth, never the pseudo masks
    assert train.label_seg_map_path == train_truth
    assert train.require_masks is True and train.skip_empty is False
    assert any(t['type'] == 'CheckSegMapValues' for t in train.pipeline)
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        assert loader.dataset.data_prefix.seg_map_path == val_truth
        assert loader.dataset.test_mode is True
    assert cfg.val_evaluator.type == 'IoUMetric'


# MiT encoder sizes from the SegFormer paper (Xie et al., NeurIPS 2021,
# Table 1): 13.1M parameters for B1, 81.4M for B5, given to one decimal
# (B1 counts 13.15M here), hence 0.1M.
@pytest.mark.parametrize('relative, depths, million_params', [
    ('segformer/segformer_mit-b1_voc_pseudo.py', [2, 2, 2, 2], 13.1),
    ('segformer/segformer_mit-b5_voc_pseudo.py', [3, 6, 40, 3], 81.4),
    ('segformer/segformer_mit-b1_coco_pseudo.py', [2, 2, 2, 2], 13.1),
    ('segformer/segformer_mit-b5_coco_pseudo.py', [3, 6, 40, 3], 81.4),
])
def test_segformer_builds_as_mit(relative, depths, million_params):
    cfg = _load(relative)
    assert cfg.model.backbone.init_cfg.type == 'Pretrained'
    model = _build_random(cfg.model).eval()
    assert [len(stage[1]) for stage in model.backbone.layers] == depths
    params = sum(p.numel() for p in model.backbone.parameters())
    assert params / 1e6 == pytest.approx(million_params, abs=0.1)
    with torch.no_grad():
        logits = model.decode_head(
            model.extract_feat(torch.zeros(1, 3, 64, 64)))
    # the all-MLP head predicts at 1/4 of the input
    assert logits.shape == (1, cfg.model.decode_head.num_classes, 16, 16)


def test_segformer_recipe_is_mmsegs():
    cfg = _load('segformer/segformer_mit-b1_voc_pseudo.py')
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.type == 'AdamW' and optimizer.lr == 6e-5
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys.head.lr_mult == 10
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.end) == ('LinearLR', 1500)
    assert (poly.type, poly.power, poly.end) == ('PolyLR', 1.0, 80000)
    assert cfg.train_cfg.max_iters == 80000
    assert _load('segformer/segformer_mit-b1_coco_pseudo.py'
                 ).train_cfg.max_iters == 160000


def test_tiny_segformer_shares_the_tiny_deeplabs_data_and_schedule():
    segformer = _load('segformer/segformer_tiny_synthetic_pseudo.py')
    deeplab = _load('deeplabv2/deeplabv2_tiny_synthetic_pseudo.py')
    for key in ('train_dataloader', 'val_dataloader', 'train_cfg',
                'param_scheduler', 'default_hooks'):
        assert segformer[key] == deeplab[key], key
    assert segformer.model.backbone.type == 'MixVisionTransformer'


def test_tiny_segformer_loss_on_a_batch():
    cfg = _load('segformer/segformer_tiny_synthetic_pseudo.py')
    torch.manual_seed(0)
    model = _build_random(cfg.model)
    model.init_weights()
    model.train()
    samples = []
    for _ in range(2):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, 6, (1, 64, 64)))
        sample.set_metainfo(dict(img_shape=(64, 64), ori_shape=(64, 64),
                                 pad_shape=(64, 64)))
        samples.append(sample)
    losses = model.loss(torch.randn(2, 3, 64, 64), samples)
    # The classifier starts at std 0.01 over 128 fused channels, so its
    # logits have a spread of about 0.01 * sqrt(128) ~ 0.1 and the cross
    # entropy sits within ~0.01 of log(6), that of uniform guesses; 0.1
    # leaves room for the batch's BatchNorm statistics.
    assert losses['decode.loss_ce'].item() == pytest.approx(
        math.log(6), abs=0.1)
    losses['decode.loss_ce'].backward()
    patch_embed = model.backbone.layers[0][0].projection.weight
    assert patch_embed.grad is not None and patch_embed.grad.abs().sum() > 0


@pytest.mark.parametrize('relative, max_iters', [
    ('mask2former/mask2former_swin-l_voc_pseudo.py', 80000),
    ('mask2former/mask2former_swin-l_coco_pseudo.py', 100000),
])
def test_mask2former_as_fma_wsss_trains_it(relative, max_iters):
    cfg = _load(relative)
    num_classes = cfg.model.decode_head.num_classes
    # crop 512, 2 images per process (batch 4 on their 2 GPUs)
    assert cfg.crop_size == (512, 512)
    assert cfg.model.data_preprocessor.size == (512, 512)
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.train_cfg.max_iters == max_iters
    assert cfg.param_scheduler[-1].end == max_iters
    # Swin-L: 192 channels in the first stage
    assert cfg.model.backbone.embed_dims == 192
    assert cfg.model.decode_head.in_channels == [192, 384, 768, 1536]
    # one weight per class and 0.1 for "no object"
    assert cfg.model.decode_head.loss_cls.class_weight == \
        [1.0] * num_classes + [0.1]
    assert 'mmdet.models' in cfg.custom_imports.imports
    assert 'semples_mm' in cfg.custom_imports.imports


def test_mask2former_swin_l_backbone_builds_without_the_ops():
    """Swin-L is mmseg's own and needs no compiled op: build it from the
    resolved config and check it feeds the head the channels it expects."""
    cfg = _load('mask2former/mask2former_swin-l_voc_pseudo.py')
    cfg.model.backbone.init_cfg = None  # no checkpoint files in tests
    with DefaultScope.overwrite_default_scope('mmseg'):
        backbone = MODELS.build(cfg.model.backbone)
    backbone.eval()  # mmseg's SwinTransformer.train() returns None
    with torch.no_grad():
        features = backbone(torch.zeros(1, 3, 64, 64))
    assert [f.shape[1] for f in features] == \
        cfg.model.decode_head.in_channels
    assert [64 // f.shape[-1] for f in features] == \
        cfg.model.decode_head.strides


@pytest.mark.skipif(importlib.util.find_spec('mmdet') is not None,
                    reason='mmdet is installed here')
def test_mask2former_head_needs_mmdetection():
    cfg = _load('mask2former/mask2former_swin-l_voc_pseudo.py')
    with pytest.raises(ImportError, match='pip install onedl-mmdetection'):
        _build_random(cfg.model)


def test_mask2former_loss_on_the_gpu_stack():
    """Runs where mmdet and mmcv's compiled ops are installed (the GPU
    stack of docs/get_started.md); skipped on the CPU stack."""
    pytest.importorskip('mmcv._ext')
    pytest.importorskip('mmdet.models')
    cfg = Config.fromfile(
        str(CONFIGS / 'mask2former/mask2former_swin-l_voc_pseudo.py'))
    model = _build_random(cfg.model)
    model.init_weights()
    model.train()
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=torch.randint(0, 21, (1, 64, 64)))
    sample.set_metainfo(dict(img_shape=(64, 64), ori_shape=(64, 64),
                             pad_shape=(64, 64)))
    losses = model.loss(torch.randn(1, 3, 64, 64), [sample])
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)


def test_mmseg_scope_finds_the_onedl_distribution(monkeypatch):
    # mmengine's own table names the upstream distribution; on the OneDL
    # stack it must point at the one that is installed
    monkeypatch.setitem(MODULE2PACKAGE, 'mmseg', 'mmsegmentation')
    remapped = _onedl_config_scopes.map_onedl_config_scopes()
    assert remapped['mmseg'] == 'onedl-mmsegmentation'
    assert MODULE2PACKAGE['mmseg'] == 'onedl-mmsegmentation'
    # an installed distribution under the upstream name is left alone
    monkeypatch.setitem(MODULE2PACKAGE, 'mmseg', 'torch')
    assert 'mmseg' not in _onedl_config_scopes.map_onedl_config_scopes()
    assert MODULE2PACKAGE['mmseg'] == 'torch'
