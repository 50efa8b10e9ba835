# A tiny DeepLabV2 (ResNetV1c-18 at 1/4 width, output stride 8, ASPP v2) on
# the embedded synthetic world (64x64 images): trains from scratch on CPU in
# a couple of minutes. The same code path as the R101 configs, for demos
# and integration tests.
#
# Set pseudo_mask_dir to the pseudo masks of the synthetic train images
# (e.g. from tools/make_pseudo_labels.py); a relative path is taken from the
# directory you run tools/train.py in. Pointing it at the ground truth
# (data/synthetic_world/SegmentationClass) gives the fully supervised
# upper bound.
import os.path as osp

_base_ = [
    '../_base_/datasets/synthetic_wsss.py', './_base_/deeplabv2_r101_20k.py'
]

pseudo_mask_dir = 'work_dirs/semples_synthetic/pseudo_masks'
# mmengine would join a relative data_prefix onto data_root; resolve it here
pseudo_mask_dir = osp.abspath(pseudo_mask_dir)

num_classes = 6
crop_size = (64, 64)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='ResNetV1c',
        depth=18,
        stem_channels=16,
        base_channels=16,
        num_stages=4,
        out_indices=(3, ),
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        contract_dilation=True,
        # trained from scratch: BN must learn its statistics
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    decode_head=dict(
        in_channels=128,  # 16 * 8 in the last stage of a ResNet-18
        num_classes=num_classes,
        # the DeepLab rates (6..24) would see mostly padding on an 8x8 map
        dilations=(1, 2, 3, 4)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegMapValues'),
    dict(
        type='RandomResize',
        scale=(64, 64),
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=16,
    dataset=dict(
        data_prefix=dict(seg_map_path=pseudo_mask_dir),
        skip_empty=False,
        # every image must have its pseudo mask: a missing or incomplete
        # folder fails when the dataset is built, naming it
        require_masks=True,
        pipeline=train_pipeline))

# From scratch the WSSS recipe's lr (2.5e-4 for a pretrained backbone) is
# far too small: a larger lr, no head multiplier, a short schedule.
optim_wrapper = dict(
    optimizer=dict(lr=0.02),
    paramwise_cfg=dict(custom_keys={'decode_head': dict(lr_mult=1.0)}))
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
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1),
    visualization=dict(type='SegVisualizationHook', draw=False))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))

img_ratios = [0.75, 1.0, 1.25]
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
