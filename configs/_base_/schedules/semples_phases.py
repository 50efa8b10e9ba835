# Training machinery shared by the SemPLeS configs: two optimizers (CAM
# network, prompts), phases entered and learning rates scheduled per phase
# by SemPLeSPhaseHook from model.phases (no param_scheduler), a training
# loop that lets a phase read its own dataloader (train_cfg.
# phase_dataloaders), exact resume, phase-aware DDP, and pseudo masks of the
# plain CAM (end of `cam`) and of the trained model (end of training), with
# the settings of the config's model.test_cfg and pseudo_label_cfg.
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
train_cfg = dict(type='PhasedTrainLoop', max_iters=None, val_interval=None)
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
    dict(type='SemPLeSPhaseHook'),
    dict(type='RandomStateHook'),
    dict(type='PseudoLabelHook', label='cam', phase='cam'),
    dict(type='PseudoLabelHook', label='semples'),
]
model_wrapper_cfg = dict(
    type='PhasedDistributedDataParallel', find_unused_parameters=True)
