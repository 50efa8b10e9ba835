"""Tests of PseudoLabelHook and CAMVisualizationHook in a real Runner."""
import glob
import itertools
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmseg.registry import HOOKS, MODELS
from PIL import Image

import semples_mm  # noqa: F401  (registers datasets, metrics)
from semples_mm.datasets import (SyntheticWSSSDataset,
                                 generate_synthetic_world)
from semples_mm.engine.hooks.cam_visualization_hook import \
    CAMVisualizationHook
from semples_mm.engine.hooks.pseudo_label_hook import (PseudoLabelHook,
                                                       build_export_dataloader)

from conftest import changed_pixel_fraction, read_masks

SYNTHETIC_WSSS_CLASSES = SyntheticWSSSDataset.METAINFO['classes']
NUM_FG = len(SYNTHETIC_WSSS_CLASSES) - 1


@MODELS.register_module(force=True)
class HookTestCAMModel(BaseModel):
    """CAMs from a fixed random colour projection; one trainable scale."""

    def __init__(self, num_classes=NUM_FG, data_preprocessor=None):
        super().__init__(data_preprocessor=MODELS.build(data_preprocessor))
        generator = torch.Generator().manual_seed(0)
        self.register_buffer(
            'weight', torch.randn(num_classes, 3, generator=generator))
        self.scale = nn.Parameter(torch.ones(()))

    def predict_cams(self, inputs, classes=None):
        """(B, 3, H, W) -> (B, K, H / 4, W / 4), or the classes of the (K,)
        bool mask ``classes``."""
        pooled = F.avg_pool2d(inputs, 4)
        weight = self.weight if classes is None else self.weight[classes]
        return torch.einsum('kc,bchw->bkhw', weight, pooled) * self.scale

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss':
            return dict(loss=(self.scale - 2) ** 2 +
                        0 * self.predict_cams(inputs).mean())
        return self.predict_cams(inputs)


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('world'))
    generate_synthetic_world(root, seed=0, num_train=6, num_val=4,
                             progress=False)
    return root


def dataset_cfg(root, split):
    return dict(
        type='PascalVOCWSSSDataset', data_root=root,
        ann_file=f'ImageSets/Segmentation/{split}.txt',
        data_prefix=dict(img_path='JPEGImages',
                         seg_map_path='SegmentationClass'),
        img_suffix='.png', metainfo=dict(classes=SYNTHETIC_WSSS_CLASSES),
        test_mode=split != 'train',
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations'),
                  dict(type='PackWSSSInputs')])


_run_ids = itertools.count()


def runner_cfg(root, work_dir, custom_hooks, max_iters=3, val_sweep=None):
    """``val_sweep``: a validation (never run) whose PseudoMaskMetric
    sweeps these thresholds."""
    val_loader = dict(batch_size=2, num_workers=0,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dataset_cfg(root, 'val'))
    for hook in custom_hooks:
        hook.setdefault('dataloader', val_loader)
    validation = {} if val_sweep is None else dict(
        val_dataloader=val_loader, val_cfg=dict(type='ValLoop'),
        val_evaluator=[dict(type='PseudoMaskMetric',
                            bg_thresholds=val_sweep)])
    return Config(dict(
        **validation,
        default_scope='mmseg',
        work_dir=work_dir,
        # Runners built in the same second would share one logger and one
        # visualizer (mmengine names them by experiment) otherwise.
        experiment_name=f'pseudo_label_hook_{next(_run_ids)}',
        model=dict(type='HookTestCAMModel', data_preprocessor=dict(
            type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375], bgr_to_rgb=True, size=(64, 64))),
        train_dataloader=dict(
            batch_size=2, num_workers=0,
            sampler=dict(type='InfiniteSampler', shuffle=True),
            dataset=dataset_cfg(root, 'train')),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters,
                       val_begin=max_iters + 1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=1000)),
        visualizer=dict(type='Visualizer',
                        vis_backends=[dict(type='LocalVisBackend')]),
        custom_hooks=custom_hooks))


def test_hooks_export_after_iteration_and_after_training(world, tmp_path):
    work_dir = str(tmp_path / 'work')
    cfg = runner_cfg(world, work_dir, [
        dict(type='PseudoLabelHook', label='cam', after_iter=1,
             scales=(1.0, ), flip=False),
        dict(type='PseudoLabelHook', label='semples', scales=(1.0, 1.2)),
        dict(type='CAMVisualizationHook', image_indices=[0, 1], iters=[2],
             draw_after_train=False),
    ], val_sweep=(0.10, 0.90, 0.20))
    runner = Runner.from_cfg(cfg)
    runner.train()

    summary = json.load(open(osp.join(work_dir, 'summary.json')))
    assert set(summary) == {'cam', 'semples'}
    assert summary['cam']['iter'] == 1 and summary['semples']['iter'] == 3
    val_ids = open(osp.join(world, 'ImageSets/Segmentation/val.txt')).read(
    ).split()
    for label in ('cam', 'semples'):
        info = summary[label]
        assert info['split'] == 'val' and info['num_images'] == len(val_ids)
        assert info['num_written'] == len(val_ids)
        assert 0.0 <= info['mIoU'] <= 100.0
        # scored over the config's sweep, as every export is
        assert list(info['metrics']['pseudo/mIoU_curve']) == [
            '0.1', '0.3', '0.5', '0.7', '0.9']
        assert info['best_threshold'] in (0.1, 0.3, 0.5, 0.7, 0.9)
        assert info['scales'] == ([1.0] if label == 'cam' else [1.0, 1.2])
        folder = osp.join(work_dir, 'pseudo_masks', label)
        assert sorted(glob.glob(osp.join(folder, '*.png'))) == sorted(
            osp.join(folder, f'{img_id}.png') for img_id in val_ids)
        mask = np.array(Image.open(osp.join(folder, f'{val_ids[0]}.png')))
        assert mask.shape == (64, 64) and mask.max() <= NUM_FG
    # the model kept training after the mid-training export
    assert runner.model.training
    drawn = glob.glob(osp.join(work_dir, '*', 'vis_data', 'vis_image',
                               'cam_*_2.png'))
    assert drawn, 'CAMVisualizationHook wrote no image'


def test_hook_resumes_and_refuses_ground_truth_folder(world, tmp_path):
    work_dir = str(tmp_path / 'work')
    cfg = runner_cfg(world, work_dir, [
        dict(type='PseudoLabelHook', label='cam', metric=None)], max_iters=1)
    runner = Runner.from_cfg(cfg)
    hook = [h for h in runner.hooks if isinstance(h, PseudoLabelHook)][0]
    first = hook.export(runner)
    assert first['num_written'] == 4 and 'mIoU' not in first
    folder = osp.join(work_dir, 'pseudo_masks', 'cam')
    removed = sorted(f for f in os.listdir(folder) if f.endswith('.png'))[0]
    before = open(osp.join(folder, removed), 'rb').read()
    os.remove(osp.join(folder, removed))
    second = hook.export(runner)
    assert second['num_written'] == 1 and second['num_skipped'] == 3
    assert open(osp.join(folder, removed), 'rb').read() == before

    bad = HOOKS.build(dict(type='PseudoLabelHook', label='gt',
                           dataloader=hook.dataloader,
                           out_dir=osp.join(world, 'SegmentationClass')))
    with pytest.raises(ValueError, match='ground-truth'):
        bad.export(runner)


def test_hook_arguments_are_checked():
    with pytest.raises(ValueError, match='not both'):
        HOOKS.build(dict(type='PseudoLabelHook', after_iter=3, phase='cam'))
    with pytest.raises(ValueError, match='>= 1'):
        HOOKS.build(dict(type='PseudoLabelHook', after_iter=0))
    with pytest.raises(ValueError, match='batch_size=0'):
        HOOKS.build(dict(type='PseudoLabelHook', batch_size=0))
    with pytest.raises(KeyError, match=r"unknown key\(s\) \['scale'\]"):
        HOOKS.build(dict(type='PseudoLabelHook', scale=(1.0, )))


@pytest.mark.float_compare
def test_hook_batch_size_replaces_the_loaders_and_keeps_the_masks(
        world, tmp_path):
    work_dir = str(tmp_path / 'work')
    cfg = runner_cfg(world, work_dir, [
        dict(type='PseudoLabelHook', label=f'batch{size}', batch_size=size,
             metric=None) for size in (1, 4)], max_iters=1)
    runner = Runner.from_cfg(cfg)
    runner.train()
    one, four = (read_masks(osp.join(work_dir, 'pseudo_masks',
                                     f'batch{size}')) for size in (1, 4))
    # other batch shapes may round differently: masks, not bytes
    assert len(one) == 4 and changed_pixel_fraction(one, four) <= 1e-3
    hook = [h for h in runner.hooks if isinstance(h, PseudoLabelHook)][-1]
    assert build_export_dataloader(runner, hook.dataloader, None,
                                   hook.settings['batch_size']
                                   ).batch_size == 4


def test_cam_overlay_is_mmengines_heat_map_over_the_image(world, tmp_path):
    """The overlay of a CAM is mmengine's draw_featmap heat map (jet,
    min-max) blended over the image: hot (red) where the CAM is high."""
    cfg = runner_cfg(world, str(tmp_path / 'work'), [dict(
        type='CAMVisualizationHook', image_indices=[0], iters=[],
        draw_after_train=True, scales=(1.0, ), flip=False, alpha=1.0)],
        max_iters=1)
    runner = Runner.from_cfg(cfg)
    runner.train()
    drawn = glob.glob(osp.join(str(tmp_path / 'work'), '*', 'vis_data',
                               'vis_image', 'cam_*.png'))
    assert drawn
    overlay = np.array(Image.open(drawn[0]).convert('RGB')).astype(int)
    hook = [h for h in runner.hooks if isinstance(h, CAMVisualizationHook)][0]
    val = hook._get_dataset(runner)
    sample = val[0]['data_samples']
    from semples_mm.models.cams import CAMInference
    from semples_mm.pseudo_labels import infer_batch_cams
    runner.model.eval()
    with torch.no_grad():
        cams = infer_batch_cams(runner.model, CAMInference(),
                                [val[0]['inputs']], [sample])[0]
    k = int(torch.nonzero(sample.gt_class_labels)[0])
    assert osp.basename(drawn[0]).startswith(f'cam_{sample.img_id}_')
    cam = cams[k].numpy()
    hot, cold = cam >= np.quantile(cam, 0.9), cam <= np.quantile(cam, 0.1)
    # jet: red where the map is high, blue where it is low
    red_minus_blue = overlay[..., 0] - overlay[..., 2]
    assert red_minus_blue[hot].mean() > red_minus_blue[cold].mean() + 100


def _load_tool(name):
    import importlib.util
    path = osp.join(osp.dirname(__file__), '..', 'tools', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'tool_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.float_compare
def test_make_pseudo_labels_tool(world, tmp_path):
    cfg = runner_cfg(world, str(tmp_path / 'work'), [])
    cfg.val_dataloader = dict(
        batch_size=2, num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dataset_cfg(world, 'val'))
    cfg.pseudo_label_cfg = dict(scales=(1.0, ), bg_threshold=0.5)
    config_path = str(tmp_path / 'cfg.py')
    cfg.dump(config_path)
    model = MODELS.build(cfg.model)
    checkpoint = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    tool = _load_tool('make_pseudo_labels')

    out = str(tmp_path / 'masks_train')
    summary = tool.main([config_path, checkpoint, '--out', out, '--split',
                         'train', '--no-progress'])
    train_ids = open(osp.join(world, 'ImageSets/Segmentation/train.txt')
                     ).read().split()
    assert sorted(glob.glob(osp.join(out, '*.png'))) == sorted(
        osp.join(out, f'{i}.png') for i in train_ids)
    assert summary['split'] == 'train' and summary['scales'] == [1.0]
    assert summary['bg_threshold'] == 0.5 and summary['mIoU'] is not None
    assert summary['amp'] is False
    saved = json.load(open(tmp_path / 'work' / 'summary.json'))
    assert saved['masks_train']['num_images'] == len(train_ids)
    amp = tool.main([config_path, checkpoint, '--out', out + '_amp',
                     '--split', 'train', '--amp', '--no-progress'])
    assert amp['amp'] is True and amp['num_written'] == len(train_ids)
    # the dense-CRF path end to end (pydensecrf2 is a test requirement)
    crf = tool.main([config_path, checkpoint, '--out', out + '_crf',
                     '--split', 'train', '--crf', '--crf-workers', '1',
                     '--no-progress'])
    assert crf['crf'] is True and crf['num_written'] == len(train_ids)
    plain, refined = read_masks(out), read_masks(out + '_crf')
    assert plain.keys() == refined.keys()
    labels = {i: set(np.unique(np.array(Image.open(osp.join(
        world, 'SegmentationClass', f'{i}.png'))))) - {255}
        for i in train_ids}
    for name, mask in refined.items():
        assert mask.shape == (64, 64)
        # only the image's own classes (and background) are written
        assert set(np.unique(mask)) <= labels[name[:-4]] | {0}
    # the CRF moves boundaries: some pixels change, most stay
    assert 0 < changed_pixel_fraction(plain, refined) < 0.5

    with pytest.raises(ValueError, match='ground-truth'):
        tool.main([config_path, checkpoint, '--out',
                   osp.join(world, 'SegmentationClass'), '--no-progress'])


def _tool_config(world, tmp_path, sweep, **pseudo_label_cfg):
    """The tiny hook model's config with a val split that has masks and a
    PseudoMaskMetric sweep; returns (config path, checkpoint)."""
    cfg = runner_cfg(world, str(tmp_path / 'work'), [], val_sweep=sweep)
    cfg.pseudo_label_cfg = dict(scales=(1.0, ), **pseudo_label_cfg)
    config_path = str(tmp_path / 'cfg.py')
    cfg.dump(config_path)
    checkpoint = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()),
               checkpoint)
    return config_path, checkpoint


@pytest.mark.float_compare
def test_bg_threshold_val_writes_train_masks_at_the_val_sweeps_best(
        world, tmp_path):
    sweep = (0.05, 0.95, 0.05)
    config_path, checkpoint = _tool_config(world, tmp_path, sweep,
                                           bg_threshold='val')
    tool = _load_tool('make_pseudo_labels')
    # the val sweep on its own: an export of val scored by the same metric
    val = tool.main([config_path, checkpoint, '--out', str(
        tmp_path / 'val'), '--split', 'val', '--bg-threshold', '0.5',
        '--no-progress'])
    out = str(tmp_path / 'train')
    summary = tool.main([config_path, checkpoint, '--out', out, '--split',
                         'train', '--no-progress'])
    assert summary['bg_threshold'] == val['best_threshold']
    choice = summary['bg_threshold_choice']
    assert choice['rule'] == 'val' and choice['split'] == 'val'
    assert choice['mIoU'] == val['mIoU'] and choice['num_images'] == 4
    assert choice['ann_file'].endswith('ImageSets/Segmentation/val.txt')
    manifest = json.load(open(osp.join(out, '.export.json')))
    assert manifest['settings']['bg_threshold'] == val['best_threshold']
    assert manifest['bg_threshold_choice'] == choice
    saved = json.load(open(tmp_path / 'work' / 'summary.json'))['train']
    assert saved['bg_threshold'] == val['best_threshold']
    # the train masks are those of a plain export at that number
    plain = tool.main([config_path, checkpoint, '--out', str(
        tmp_path / 'plain'), '--split', 'train', '--bg-threshold',
        str(val['best_threshold']), '--no-progress'])
    assert plain['fingerprint'] == summary['fingerprint']
    # Same process, same kernels and batches: identical masks expected;
    # the 1e-3 allows a score tied with the threshold to round otherwise.
    assert changed_pixel_fraction(read_masks(out),
                                  read_masks(tmp_path / 'plain')) <= 1e-3
    # masks written at another threshold are not taken for these
    other = str(tmp_path / 'other')
    tool.main([config_path, checkpoint, '--out', other, '--split', 'train',
               '--bg-threshold', str(round(val['best_threshold'] + 0.05, 2)),
               '--no-progress'])
    with pytest.raises(RuntimeError, match='another export'):
        tool.main([config_path, checkpoint, '--out', other, '--split',
                   'train', '--no-progress'])


def test_hook_with_bg_threshold_val_writes_at_the_val_sweeps_best(
        world, tmp_path):
    work_dir = str(tmp_path / 'work')
    cfg = runner_cfg(world, work_dir, [
        dict(type='PseudoLabelHook', label='chosen', bg_threshold='val',
             ann_file='ImageSets/Segmentation/train.txt'),
        dict(type='PseudoLabelHook', label='val_scored', bg_threshold=0.5),
    ], val_sweep=(0.05, 0.95, 0.05))
    Runner.from_cfg(cfg).train()
    summary = json.load(open(osp.join(work_dir, 'summary.json')))
    # the second hook scored val's CAMs with the same weights and sweep
    best = summary['val_scored']['best_threshold']
    assert summary['chosen']['bg_threshold'] == best
    assert summary['chosen']['bg_threshold_choice']['mIoU'] == \
        summary['val_scored']['mIoU']
    assert summary['chosen']['split'] == 'train'


@pytest.mark.float_compare
def test_saved_cams_read_by_weaktrs_loader_give_the_written_masks(
        world, tmp_path):
    from weaktr_cam_reader import near_tie_pixels, weaktr_masks
    config_path, checkpoint = _tool_config(world, tmp_path,
                                           (0.05, 0.95, 0.05),
                                           bg_threshold=0.3)
    tool = _load_tool('make_pseudo_labels')
    out, cams = str(tmp_path / 'masks'), str(tmp_path / 'cams')
    summary = tool.main([config_path, checkpoint, '--out', out, '--split',
                         'train', '--save-cams', cams, '--no-progress'])
    train_ids = open(osp.join(world, 'ImageSets/Segmentation/train.txt')
                     ).read().split()
    assert summary['num_cams_written'] == len(train_ids)
    assert summary['cams_format'] == 'weaktr'
    written = read_masks(out)
    rebuilt = weaktr_masks(cams, summary['bg_threshold'])
    assert sorted(rebuilt) == sorted(train_ids)
    for img_id in train_ids:
        cam_dict = np.load(osp.join(cams, f'{img_id}.npy'),
                           allow_pickle=True).item()
        gt = np.array(Image.open(osp.join(world, 'SegmentationClass',
                                          f'{img_id}.png')))
        # the image's labelled classes, 0-based, no background entry
        assert sorted(cam_dict) == sorted(
            int(c) - 1 for c in set(np.unique(gt)) - {0, 255})
        for cam in cam_dict.values():
            assert cam.dtype == np.float32 and cam.shape == gt.shape
            assert 0 <= cam.min() and cam.max() < 1
        # Their loader softmaxes before the argmax (float32 exp), which may
        # turn two scores 1 ulp apart into a tie: only pixels whose top two
        # scores lie within 1e-6 may differ.
        differing = int((rebuilt[img_id] != written[f'{img_id}.png']).sum())
        assert differing <= near_tie_pixels(
            osp.join(cams, f'{img_id}.npy'), summary['bg_threshold'])
    # FMA-WSSS's layout holds the same maps
    fma = tool.main([config_path, checkpoint, '--out', out, '--split',
                     'train', '--save-cams', str(tmp_path / 'fma'),
                     '--cams-format', 'fma-wsss', '--no-progress'])
    assert fma['num_skipped'] == len(train_ids)  # the PNGs were kept
    for img_id in train_ids:
        loaded = np.load(osp.join(tmp_path, 'fma', f'{img_id}.npz'))
        cam_dict = np.load(osp.join(cams, f'{img_id}.npy'),
                           allow_pickle=True).item()
        assert loaded['fg_cls'].tolist() == list(cam_dict)
        # the same inference twice in one process: the same float32 maps
        # up to a rounding of the kernels
        np.testing.assert_allclose(
            loaded['cam'], np.stack(list(cam_dict.values())), atol=1e-6)


def test_visualize_prompts_lists_words_and_texts():
    tool = _load_tool('visualize_prompts')
    model = nn.Module()
    model.clip = MODELS.build(dict(type='FrozenCLIP',
                                   model_name='semples-synthetic-tiny'))
    width = model.clip.model.token_embedding.weight.shape[1]
    model.prompt_learner = MODELS.build(dict(
        type='BackgroundPromptLearner', class_names=['boat', 'plane'],
        length=3, width=width))
    # make context vector 0 of 'boat' the embedding of the word 'water'
    water_id = model.clip.tokenizer.encode('water')[0]
    with torch.no_grad():
        model.prompt_learner.ctx[0, 0] = \
            model.clip.model.token_embedding.weight[water_id]
    report = tool.describe_prompts(
        model, ['a photo of water.', 'a photo of sky.', 'a photo of rails.'],
        topk=2)
    assert set(report) == {'boat', 'plane'}
    assert len(report['boat']['words']) == 3
    assert report['boat']['words'][0][0] == ('water', 1.0)
    assert len(report['plane']['texts']) == 2
    assert 'ctx  0: water(1.0)' in tool.format_report(report)
