# The short schedule of the tiny final networks on the synthetic world:
# 300 iterations (batch 16 from the dataset base), poly decay, one
# validation and one checkpoint at the end, on CPU. Each network config
# sets its own optimizer (SGD for DeepLabV2, AdamW for SegFormer).
_base_ = ['../default_runtime.py']

max_iters = 300
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=max_iters,
        max_keep_ckpts=1,
        save_best='mIoU'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook', draw=False))
# CPU runs: gloo for several processes (tools/dist_train.sh)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
