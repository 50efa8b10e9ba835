# DeepLabV2 (ResNet-101, ASPP v2, output stride 8) and its WSSS training
# recipe: SGD lr 2.5e-4 (head x10), momentum 0.9, wd 5e-4, poly 0.9, batch
# 10, 20k iterations. The configs that use it add a dataset base config
# (configs/_base_/datasets/*) and set num_classes, the crop size, the
# DeepLab pipelines and the pretrained checkpoint. No key here may repeat a
# dataset base's key (mmengine refuses duplicate keys among bases).
_base_ = ['../../_base_/default_runtime.py']

# DeepLab v2 keeps the ImageNet BN statistics (batch 10 is too small to
# re-estimate them): frozen affine and running stats.
norm_cfg = dict(type='BN', requires_grad=False)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(321, 321))  # the crop size; set with the pipeline's crop
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        # torchvision-layout ResNet: loads an ImageNet resnet101 state dict.
        type='ResNet',
        depth=101,
        num_stages=4,
        out_indices=(3, ),
        # output stride 8: stages 3-4 keep stride 1 and dilate instead
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        norm_cfg=norm_cfg,
        norm_eval=True,
        style='pytorch',
        contract_dilation=False,
        # the dataset configs set the local ImageNet checkpoint file
        init_cfg=dict(type='Pretrained', checkpoint=None)),
    decode_head=dict(
        type='DeepLabV2Head',
        in_channels=2048,
        in_index=0,
        num_classes=21,
        dilations=(6, 12, 18, 24),
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
            avg_non_ignore=True)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

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
