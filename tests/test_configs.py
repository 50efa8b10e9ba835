"""Every shipped config builds as a user would run it, with random weights
and no files: the model, every dataloader's dataset and pipeline (on a tiny
folder of the config's layout that the test writes), the custom hooks, and
one forward of the model on a batch of its own training pipeline."""
import copy
import os.path as osp
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, HOOKS, MODELS
from PIL import Image

import semples_mm  # noqa: F401
from conftest import REPO_ROOT
from semples_mm.datasets import generate_synthetic_world
from semples_mm.engine.runner import merge_dataloader_cfg

# The custom-dataset template names a user's folder and CLIP that do not
# exist until its EDIT lines are set: tests/test_custom_dataset.py sets them
# and runs it through the pipeline.
TEMPLATES = ('configs/semples/custom_dataset_example.py', )
# Mask2Former needs mmdet and mmcv's compiled ops, and its head returns
# class and mask predictions, not decode.loss_ce and logits:
# tests/test_segmentor_configs.py builds it as far as this stack allows.
GPU_STACK = 'configs/mask2former/'
CONFIGS = sorted(
    str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / 'configs').rglob('*.py')
    if '_base_' not in p.parts
    and str(p.relative_to(REPO_ROOT)) not in TEMPLATES
    and not str(p.relative_to(REPO_ROOT)).startswith(GPU_STACK))
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
IMAGE_IDS = ('img_a', 'img_b', 'img_c')


def _write_pair(image_path, mask_path, rng, class_ids, size=(40, 52)):
    """A JPEG and its class-id mask with two rectangles of ``class_ids``."""
    height, width = size
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    mask = np.zeros(size, np.uint8)
    mask[4:20, 5:25] = class_ids[0]
    mask[22:36, 30:48] = class_ids[1]
    mask[0, 0] = 255
    for path, array in ((image_path, image), (mask_path, mask)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(path)


@pytest.fixture(scope='module')
def tiny_roots(tmp_path_factory):
    """A VOC-layout and a COCO-layout folder of three images each."""
    rng = np.random.default_rng(0)
    voc = tmp_path_factory.mktemp('voc')
    for img_id in IMAGE_IDS:
        for masks in ('SegmentationClass', 'SegmentationClassAug'):
            _write_pair(voc / 'JPEGImages' / f'{img_id}.jpg',
                        voc / masks / f'{img_id}.png', rng, (1, 15))
    (voc / 'ImageSets' / 'Segmentation').mkdir(parents=True)
    for split in ('train', 'val', 'trainaug'):
        (voc / 'ImageSets' / 'Segmentation' / f'{split}.txt').write_text(
            '\n'.join(IMAGE_IDS))
    coco = tmp_path_factory.mktemp('coco')
    for split in ('train2014', 'val2014'):
        for img_id in IMAGE_IDS:
            _write_pair(coco / split / f'{img_id}.jpg',
                        coco / 'SegmentationClass' / split / f'{img_id}.png',
                        rng, (1, 80))
        (coco / 'ImageSets').mkdir(exist_ok=True)
        (coco / 'ImageSets' / f'{split}.txt').write_text('\n'.join(IMAGE_IDS))
    # the 1,250-image train subset the WeakTr COCO configs select on
    (coco / 'ImageSets' / 'train2014_1250.txt').write_text(
        '\n'.join(IMAGE_IDS))
    return dict(voc=voc, coco=coco,
                synthetic=tmp_path_factory.mktemp('synthetic'))


def _point_at_tiny_data(dataset, roots):
    """Redirect a dataset config to the tiny folder of its layout: the
    synthetic world (shrunk), VOC or COCO. A pseudo-mask folder outside
    data_root (the DeepLabV2 configs) becomes the tiny ground truth."""
    dataset = copy.deepcopy(dataset)
    if dataset.get('synthetic_world') is not None:
        dataset['data_root'] = str(roots['synthetic'])
        dataset['synthetic_world'] = dict(
            dataset['synthetic_world'], num_train=6, num_val=3,
            progress=False)
        generate_synthetic_world(dataset['data_root'],
                                 **dataset['synthetic_world'])
        ground_truth = 'SegmentationClass'
    elif dataset['type'] == 'COCOWSSSDataset':
        dataset['data_root'] = str(roots['coco'])
        ground_truth = 'SegmentationClass/train2014'
    else:
        assert dataset['type'] == 'PascalVOCWSSSDataset', dataset['type']
        dataset['data_root'] = str(roots['voc'])
        ground_truth = 'SegmentationClassAug'
    prefix = dataset.get('data_prefix', {})
    if osp.isabs(prefix.get('seg_map_path', '')):
        prefix['seg_map_path'] = ground_truth
    return dataset


def _without_weight_files(model_cfg):
    """Drop local checkpoint paths so the model builds offline."""
    model_cfg = copy.deepcopy(model_cfg)
    model_cfg.get('backbone', {}).pop('init_cfg', None)
    if model_cfg.get('clip'):
        model_cfg['clip']['pretrained'] = None
    return model_cfg


def _redirect_datasets(node, roots):
    """Every dataset config anywhere in ``node`` (a model's crop-feature
    bank, a hook's dataloader) pointed at the tiny data, in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict) and str(
                    value.get('type', '')).endswith('Dataset'):
                node[key] = _point_at_tiny_data(value, roots)
            else:
                _redirect_datasets(value, roots)
    elif isinstance(node, list):
        for item in node:
            _redirect_datasets(item, roots)


@pytest.mark.parametrize('path', CONFIGS)
def test_shipped_config_builds_and_runs(path, tiny_roots):
    cfg = Config.fromfile(REPO_ROOT / path)
    assert 'semples_mm' in cfg.custom_imports['imports']
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model_cfg = _without_weight_files(cfg.model)
    _redirect_datasets(model_cfg, tiny_roots)
    model = MODELS.build(model_cfg)
    assert type(model).__name__ == cfg.model.type

    hooks = [HOOKS.build(copy.deepcopy(h)) for h in cfg.get(
        'custom_hooks', [])]
    assert [type(h).__name__ for h in hooks] == [
        h['type'] for h in cfg.get('custom_hooks', [])]

    datasets = {}
    for key in LOADERS:
        datasets[key] = DATASETS.build(_point_at_tiny_data(
            cfg[key]['dataset'], tiny_roots))
    hook_cfgs = copy.deepcopy(cfg.get('custom_hooks', []))
    _redirect_datasets(hook_cfgs, tiny_roots)
    for hook in hook_cfgs:
        if isinstance(hook.get('dataloader'), dict):
            DATASETS.build(hook['dataloader']['dataset'])[0]
    # a phase that reads its own dataloader (merged into train_dataloader)
    for override in (cfg.train_cfg.get('phase_dataloaders') or {}).values():
        loader = merge_dataloader_cfg(cfg.train_dataloader, override)
        item = DATASETS.build(_point_at_tiny_data(loader['dataset'],
                                                  tiny_roots))[0]
        assert 'gt_class_labels' in item['data_samples']
    for key, dataset in datasets.items():
        sample = dataset[0]['data_samples']
        # the classes of the tiny masks: 1 and 15 (VOC), 1 and 80 (COCO)
        if 'gt_class_labels' in sample:
            assert int(sample.gt_class_labels.sum()) >= 1, key
        assert tuple(sample.metainfo['ori_shape'])  # the pipeline ran

    train_set = datasets['train_dataloader']
    batch = model.data_preprocessor(
        pseudo_collate([train_set[i] for i in range(2)]), True)
    model.train()
    if cfg.model.type == 'SemPLeS':
        # the run is as long as the phases (PhasedTrainLoop takes it)
        assert cfg.train_cfg.type == 'PhasedTrainLoop'
        assert cfg.train_cfg.get('max_iters') in (
            None, model.schedule.total_iters)
        assert cfg.model_wrapper_cfg.type == \
            'MMSeparateDistributedDataParallel'
        assert model.cam_head.num_classes == \
            len(train_set.metainfo['classes']) - 1
        for phase in model.schedule:
            model.set_phase(phase.name)
            losses = model.loss(batch['inputs'], batch['data_samples'])
            assert losses, phase
            assert all(torch.isfinite(v) for k, v in losses.items()
                       if k.startswith('loss')), (phase, losses)
        model.eval()
        with torch.no_grad():
            results = model.predict(batch['inputs'], batch['data_samples'])
        assert results[0].seg_logits.data.shape[0] == \
            len(train_set.metainfo['classes'])
    else:
        losses = model.loss(batch['inputs'], batch['data_samples'])
        assert torch.isfinite(losses['decode.loss_ce'])
        model.eval()
        with torch.no_grad():
            logits = model(batch['inputs'], mode='tensor')
        assert logits.shape[:2] == (2, len(train_set.metainfo['classes']))


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
