# What the VOC and COCO SemPLeS configs share (they differ in the dataset
# base and in the numbers): the ResNet-50 + CLIP ViT-B/32 model, the phase
# machinery, the 224 training crops and the evaluators. A leaf adds a
# dataset base and sets the phases, batch size, learning rates and loss
# weights. (mmengine refuses keys defined by two bases, so coco.py cannot
# inherit voc.py and the COCO dataset base at once; both inherit this.)
_base_ = [
    './models/semples_r50_clip_vitb32.py',
    './default_runtime.py',
    './schedules/semples_phases.py',
]
# The leaves read these (the dataset bases already define train_pipeline,
# crop_size and the evaluators): train_dataloader's pipeline is
# {{_base_.semples_train_pipeline}}, val_evaluator is
# {{_base_.semples_evaluator}}.
semples_crop_size = (224, 224)
semples_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='SegRandomResizedCrop', size=semples_crop_size, scale=(0.08, 1.0),
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    # the authors' colour jitter 0.4 (RandAugment and random erasing of
    # their timm pipeline are not reproduced)
    dict(type='PhotoMetricDistortion', brightness_delta=32,
         contrast_range=(0.6, 1.4), saturation_range=(0.6, 1.4),
         hue_delta=18),
    dict(type='PackWSSSInputs'),
]
# CAM mIoU at the config's threshold and pseudo-mask mIoU over a sweep
semples_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='PseudoMaskMetric', bg_thresholds=(0.30, 0.70, 0.01)),
]
default_hooks = dict(checkpoint=dict(interval=2000))
env_cfg = dict(dist_cfg=dict(backend='nccl'))
randomness = dict(seed=504)
