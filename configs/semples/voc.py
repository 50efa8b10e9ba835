# SemPLeS on PASCAL VOC 2012 trainaug (10,582 images) with the authors'
# VOC settings (../shared/METHOD.md): lambda 2.4, gamma 0.02, w 0.05,
# AdamW wd 0.03, batch 64, lr 5.12e-4 * 64 / 512 in stages 1 and 3,
# 0.1 * 128 / 512 for the prompts, 60 epochs per stage, 224 crops.
_base_ = [
    '../_base_/datasets/voc12_wsss.py',
    '../_base_/models/semples_r50_clip_vitb32.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/semples_phases.py',
]
# The class texts the authors wrote ('player' for person).
clip_class_names = (
    'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
    'chair', 'cow', 'dining table', 'dog', 'horse', 'motorbike', 'player',
    'potted plant', 'sheep', 'sofa', 'train', 'tv monitor')
# 60 epochs of 10,582 images at batch 64 = 9,920 iterations per stage.
cam_iters = match_iters = prompt_iters = refine_iters = 9920
max_iters = cam_iters + match_iters + prompt_iters + refine_iters
batch_size = 64
model = dict(
    class_names=clip_class_names,
    phases=[
        dict(name='cam', iters=cam_iters),
        dict(name='match', iters=match_iters),
        dict(name='prompt', iters=prompt_iters),
        dict(name='refine', iters=refine_iters),
    ],
    prompt_learner=dict(class_names=clip_class_names),
    match_loss=dict(bg_weight=2.4),
    prompt_loss=dict(text_weight=0.02),
    refine_loss=dict(loss_weight=0.05))
crop_size = (224, 224)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='SegRandomResizedCrop', size=crop_size, scale=(0.08, 1.0),
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    # the authors' colour jitter 0.4 (RandAugment and random erasing of
    # their timm pipeline are not reproduced)
    dict(type='PhotoMetricDistortion', brightness_delta=32,
         contrast_range=(0.6, 1.4), saturation_range=(0.6, 1.4),
         hue_delta=18),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(
    batch_size=batch_size, num_workers=8,
    dataset=dict(pipeline=train_pipeline))
# CAM validation on VOC train (1,464 images), as WSSS papers report seeds.
val_dataloader = dict(dataset=dict(ann_file='ImageSets/Segmentation/train.txt'))
test_dataloader = val_dataloader
optim_wrapper = dict(
    cam=dict(
        # stage 0 at 10x the stage-1/3 rate (SemPLeSPhaseHook lr_mult)
        optimizer=dict(lr=6.4e-4, weight_decay=0.03)),
    prompt=dict(
        optimizer=dict(lr=0.1 * batch_size / 512,
                       weight_decay=0.03)))
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='PseudoMaskMetric', bg_thresholds=(0.30, 0.70, 0.01)),
]
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(interval=2000))
custom_hooks = [
    dict(type='SemPLeSPhaseHook', lr_mult=dict(match=0.1, refine=0.1)),
    dict(type='RandomStateHook'),
    # pseudo masks of the training list at the end of cam and of refine
    dict(type='PseudoLabelHook', label='cam', phase='cam',
         scales=(1.0, 1.2), bg_threshold=0.43, batch_size=8),
    dict(type='PseudoLabelHook', label='semples', phase='refine',
         scales=(1.0, 1.2), bg_threshold=0.43, batch_size=8),
]
pseudo_label_cfg = dict(scales=(1.0, 1.2), flip=True, bg_threshold=0.43,
                        crf=False, batch_size=8)
env_cfg = dict(dist_cfg=dict(backend='nccl'))
randomness = dict(seed=504)
