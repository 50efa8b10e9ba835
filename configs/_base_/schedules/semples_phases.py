# Training machinery shared by the SemPLeS configs: two optimizers (CAM
# network, prompts), which the model steps phase by phase with learning
# rates from model.phases and model.lr_schedule (no param_scheduler); a
# training loop as long as model.phases that validates at phase ends and
# lets a phase read its own dataloader (train_cfg.phase_dataloaders); exact
# resume; mmengine's per-part DDP for several processes; and pseudo masks
# of the plain CAM (end of `cam`) and of the trained model (end of
# training), with the settings of the config's model.test_cfg and
# pseudo_label_cfg. Configs set the learning rates and the evaluators
# (IoUMetric and PseudoMaskMetric with a threshold sweep).
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
train_cfg = dict(type='PhasedTrainLoop')
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
    dict(type='PhaseLogHook'),
    dict(type='RandomStateHook'),
    dict(type='PseudoLabelHook', label='cam', phase='cam'),
    dict(type='PseudoLabelHook', label='semples'),
]
# Several processes: mmengine's wrapper for models that step several
# optimizers (its GANs' too) wraps each trainable part in its own DDP and
# calls the model's own train_step. A phase leaves the parts it does not
# train without gradients (find_unused_parameters); the model averages the
# BatchNorm statistics over the ranks after every step itself.
model_wrapper_cfg = dict(
    type='MMSeparateDistributedDataParallel', find_unused_parameters=True)
