# Training machinery shared by the SemPLeS configs: two optimizers (CAM
# network, prompts), phases switched and learning rates scheduled per phase
# by SemPLeSPhaseHook (no param_scheduler), exact resume, phase-aware DDP.
# Configs set the learning rates, max_iters (= the sum of model.phases) and
# the evaluators (IoUMetric and PseudoMaskMetric with a threshold sweep).
optim_wrapper = dict(
    constructor='ModuleGroupsOptimWrapperConstructor',
    cam=dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.03),
        modules=('backbone', 'neck', 'cam_head')),
    prompt=dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=0.025, weight_decay=0.03),
        modules=('prompt_learner', )))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=None, val_interval=None)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100,
                    max_keep_ckpts=2, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
custom_hooks = [
    # Per-phase cosine learning rates; stages 1 and 3 fine-tune the CAM
    # network at a tenth of stage 0's rate (the authors' 5.12e-4 * B / 512).
    dict(type='SemPLeSPhaseHook', lr_mult=dict(match=0.1, refine=0.1)),
    dict(type='RandomStateHook'),
]
model_wrapper_cfg = dict(
    type='PhasedDistributedDataParallel', find_unused_parameters=True)
