# SemPLeS at test size: configs/semples/synthetic.py's structure (all four
# phases, two optimizers, phase hook, random-state hook) on a 32x32
# synthetic world, a ResNetV1c-18 at width 8 and a randomly initialised
# 'semples-synthetic-tiny' CLIP. A whole run takes a few seconds on 2 cores.
# The tests set data_root (a tmp folder; the world is generated there).
_base_ = ['../../../configs/_base_/datasets/synthetic_wsss.py']
default_scope = 'mmseg'
data_root = None
fg_class_names = ('boat', 'plane', 'train', 'cow', 'bird')
synthetic_world = dict(seed=0, num_train=64, num_val=16, image_size=32,
                       context_prob=0.85, progress=False)

cam_iters, match_iters, prompt_iters, refine_iters = 4, 3, 3, 3
max_iters = cam_iters + match_iters + prompt_iters + refine_iters

norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='SemPLeS',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=(32, 32)),
    backbone=dict(
        type='ResNetV1c', depth=18, stem_channels=8, base_channels=8,
        strides=(1, 1, 1, 1), dilations=(1, 2, 4, 4), out_indices=(3, ),
        norm_cfg=norm_cfg, contract_dilation=True),
    cam_head=dict(type='CAMHead', in_channels=64, num_classes=5, pool='gap'),
    class_names=fg_class_names,
    phases=[
        dict(name='cam', iters=cam_iters),
        dict(name='match', iters=match_iters),
        dict(name='prompt', iters=prompt_iters),
        dict(name='refine', iters=refine_iters),
    ],
    clip=dict(
        type='FrozenCLIP',
        model_name='semples-synthetic-tiny',
        pretrained=None,
        input_mean=[123.675, 116.28, 103.53],
        input_std=[58.395, 57.12, 57.375]),
    prompt_learner=dict(
        type='BackgroundPromptLearner', class_names=fg_class_names,
        length=4, width=96),
    match_loss=dict(type='SegmentLabelMatchingLoss', bg_weight=2.4),
    prompt_loss=dict(type='ContrastivePromptLoss', text_weight=0.02),
    refine_loss=dict(type='PromptRefinementLoss', loss_weight=0.05),
    test_cfg=dict(bg_threshold=0.45))

train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, synthetic_world=synthetic_world))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, synthetic_world=synthetic_world))
test_dataloader = val_dataloader
optim_wrapper = dict(
    constructor='ModuleGroupsOptimWrapperConstructor',
    cam=dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
        modules=('backbone', 'neck', 'cam_head')),
    prompt=dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=0.025, weight_decay=0.03),
        modules=('prompt_learner', )))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='PseudoMaskMetric'),
]
test_evaluator = val_evaluator
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2),
    sampler_seed=dict(type='DistSamplerSeedHook'))
custom_hooks = [
    dict(type='SemPLeSPhaseHook', lr_mult=dict(match=0.1, refine=0.1)),
    dict(type='RandomStateHook'),
]
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork'),
               dist_cfg=dict(backend='gloo'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends)
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
