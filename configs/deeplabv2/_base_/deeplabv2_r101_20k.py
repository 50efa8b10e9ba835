# DeepLabV2-R101 with its WSSS training recipe: SGD lr 2.5e-4 (head x10),
# momentum 0.9, wd 5e-4, poly 0.9, batch 10, 20k iterations. The configs
# that use it add a dataset base config (configs/_base_/datasets/*) and set
# num_classes, the crop size, the DeepLab pipelines and the pretrained
# checkpoint. No key here may repeat a dataset base's key (mmengine refuses
# duplicate keys among bases).
_base_ = ['./deeplabv2_r101.py', '../../_base_/default_runtime.py']

# optimiser and schedule
optimizer = dict(type='SGD', lr=2.5e-4, momentum=0.9, weight_decay=5e-4)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=optimizer,
    clip_grad=None,
    # the randomly initialised head learns 10x faster than the backbone
    paramwise_cfg=dict(custom_keys={'decode_head': dict(lr_mult=10.0)}))
max_iters = 20000
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
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=2000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# runtime
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=2000,
        max_keep_ckpts=2,
        save_best='mIoU'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
# fixed input sizes: let cuDNN pick its fastest kernels
env_cfg = dict(cudnn_benchmark=True)

# Multi-scale + flip test (tools/test.py --tta): full-resolution images
# rescaled by each ratio, each also flipped; logits averaged by SegTTAModel
# (tta_model, from default_runtime.py).
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(type='Resize', scale_factor=r, keep_ratio=True)
                for r in img_ratios
            ],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ], [dict(type='LoadAnnotations')], [dict(type='PackSegInputs')]
        ])
]
