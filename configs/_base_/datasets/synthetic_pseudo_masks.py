# The synthetic world for the tiny final networks (DeepLabV2, SegFormer):
# training on pseudo masks of the train images, validation on the ground
# truth, with the DeepLab-style augmentation of the VOC/COCO configs.
#
# Set pseudo_mask_dir to the pseudo masks of the synthetic train images
# (e.g. from tools/make_pseudo_labels.py), here or with --cfg-options
# train_dataloader.dataset.data_prefix.seg_map_path=...; a relative path is
# taken from the directory you run tools/train.py in. Pointing it at the
# ground truth (data/synthetic_world/SegmentationClass) gives the fully
# supervised upper bound.
import os.path as osp

_base_ = ['./synthetic_wsss.py']

pseudo_mask_dir = 'work_dirs/semples_synthetic/pseudo_masks'
# mmengine would join a relative data_prefix onto data_root; resolve it here
pseudo_mask_dir = osp.abspath(pseudo_mask_dir)

crop_size = (64, 64)  # the world's image size, as in synthetic_wsss.py

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
