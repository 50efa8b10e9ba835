# SemPLeS on MS COCO 2014 train (82,081 images) with the authors' COCO
# settings (../shared/METHOD.md): lambda 0.75, gamma 0.01, w 0.2, AdamW
# wd 0.03, lr 5.12e-6 * batch / 512 in stages 1 and 3, 0.01 * 128 / 512 for
# the prompts, 224 crops. Batch 32 in every phase (authors: 32 / 128 / 24).
_base_ = [
    '../_base_/datasets/coco14_wsss.py',
    '../_base_/models/semples_r50_clip_vitb32.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/semples_phases.py',
]
# COCO's 80 category names (the dataset's classes without background).
clip_class_names = {{_base_.fg_class_names}}
# 60 epochs of 82,081 images at batch 32 would be 153,900 iterations per
# stage; like most re-implementations we default to 10 epochs per stage.
cam_iters = match_iters = prompt_iters = refine_iters = 25650
max_iters = cam_iters + match_iters + prompt_iters + refine_iters
batch_size = 32
model = dict(
    class_names=clip_class_names,
    phases=[
        dict(name='cam', iters=cam_iters),
        dict(name='match', iters=match_iters),
        dict(name='prompt', iters=prompt_iters),
        dict(name='refine', iters=refine_iters),
    ],
    prompt_learner=dict(class_names=clip_class_names),
    cam_head=dict(num_classes=80),
    match_loss=dict(bg_weight=0.75),
    prompt_loss=dict(text_weight=0.01),
    refine_loss=dict(loss_weight=0.2))
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
# CAM validation on COCO val 2014 (40,137 images: slow; subset the list
# for quick looks).
optim_wrapper = dict(
    cam=dict(
        # stage 0 at 10x the stage-1/3 rate (SemPLeSPhaseHook lr_mult)
        optimizer=dict(lr=10 * 5.12e-6 * batch_size / 512,
                       weight_decay=0.03)),
    prompt=dict(
        optimizer=dict(lr=0.01 * 128 / 512,
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
         scales=(1.0, 0.8, 1.2), bg_threshold=0.42, batch_size=8),
    dict(type='PseudoLabelHook', label='semples', phase='refine',
         scales=(1.0, 0.8, 1.2), bg_threshold=0.42, batch_size=8),
]
pseudo_label_cfg = dict(scales=(1.0, 0.8, 1.2), flip=True, bg_threshold=0.42,
                        crf=False, batch_size=8)
env_cfg = dict(dist_cfg=dict(backend='nccl'))
randomness = dict(seed=504)
