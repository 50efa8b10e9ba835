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
# {{_base_.semples_evaluator}}; the configs of the authors' exact runs
# (*_weaktr.py, configs/weaktr/) read the timm pipelines, the selection
# evaluator and the CRF settings below.
semples_crop_size = (224, 224)
semples_train_interpolation = 'bicubic'  # the authors' timm recipe's
semples_random_resized_crop = dict(
    type='SegRandomResizedCrop', size=semples_crop_size, scale=(0.08, 1.0),
    interpolation=semples_train_interpolation)
# The authors' crop is timm's RandomResizedCropAndInterpolation on a PIL
# image (timm 0.5.4, kuongan/SemPLeS requirements.txt line 1): PIL's
# bicubic resize, which antialiases when it shrinks.
semples_timm_random_resized_crop = dict(semples_random_resized_crop,
                                        backend='pillow')
semples_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    semples_random_resized_crop,
    dict(type='RandomFlip', prob=0.5),
    # the authors' colour jitter 0.4 (RandAugment and random erasing of
    # their timm pipeline are not reproduced)
    dict(type='PhotoMetricDistortion', brightness_delta=32,
         contrast_range=(0.6, 1.4), saturation_range=(0.6, 1.4),
         hue_delta=18),
    dict(type='PackWSSSInputs'),
]
# The authors' augmentation, their timm training transform
# (kuongan/SemPLeS datasets.py lines 194-213, main1.py lines 116-137):
# stages 1 and 3 (match, refine) RandomResizedCrop 224 bicubic, flip,
# RandAugment 'rand-m9-mstd0.5-inc1' and random erasing (probability 0.25,
# per-pixel normal values, one box); the prompt stage crop and flip only.
# Their colour jitter 0.4 is off in timm when RandAugment is on. Image only:
# RandAugment moves pixels, so these pipelines load no masks (the training
# phases never read them). The fill of RandAugment and the values of the
# erasing follow the data preprocessor's normalisation.
semples_timm_train_pipeline = [
    dict(type='LoadImageFromFile'),
    semples_timm_random_resized_crop,
    dict(type='RandomFlip', prob=0.5),
    dict(type='TimmRandAugment', config_str='rand-m9-mstd0.5-inc1',
         img_mean={{_base_.data_preprocessor.mean}},
         img_size=semples_crop_size,
         interpolation=semples_train_interpolation),
    dict(type='TimmRandomErasing', prob=0.25, mode='pixel', max_count=1,
         mean={{_base_.data_preprocessor.mean}},
         std={{_base_.data_preprocessor.std}},
         bgr_to_rgb={{_base_.data_preprocessor.bgr_to_rgb}}),
    dict(type='PackWSSSInputs'),
]
semples_crop_flip_pipeline = [
    dict(type='LoadImageFromFile'),
    semples_timm_random_resized_crop,
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackWSSSInputs'),
]
# CAM mIoU at the config's threshold and pseudo-mask mIoU over a sweep
# (from 0.10: CAMs that spread little peak below the authors' 0.40)
semples_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='PseudoMaskMetric', bg_thresholds=(0.10, 0.70, 0.01)),
]
# The authors' (and WeakTr's) model selection: CAM mIoU over background
# thresholds 0.40..0.59.
semples_selection_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='PseudoMaskMetric', bg_thresholds=(0.40, 0.59, 0.01)),
]
# The authors' (WeakTr's) dense CRF: unary from the argmax labels, held with
# probability 0.7 (pseudo_label_cfg.crf_cfg; the CRF itself is crf=True).
semples_authors_crf_cfg = dict(unary='labels', gt_prob=0.7)
default_hooks = dict(checkpoint=dict(interval=2000))
env_cfg = dict(dist_cfg=dict(backend='nccl'))
randomness = dict(seed=504)
