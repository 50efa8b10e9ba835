# PASCAL VOC 2012 trainaug for a final segmentation network (SegFormer, ...):
# trained on pseudo masks (ids 0..20, 255 ignore, one <img_id>.png per
# train image, from tools/make_pseudo_labels.py or the PseudoLabelHook),
# validated on the ground truth of val; mmseg's 512x512 training
# augmentation.
#
# Set pseudo_mask_dir here or with --cfg-options
# train_dataloader.dataset.data_prefix.seg_map_path=/abs/pseudo_masks; a
# relative path is taken from the directory you run tools/train.py in.
import os.path as osp

_base_ = ['./voc12_wsss.py']

pseudo_mask_dir = 'work_dirs/semples_voc/pseudo_masks'
# mmengine would join a relative data_prefix onto data_root; resolve it here
pseudo_mask_dir = osp.abspath(pseudo_mask_dir)

crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    # a pseudo mask written with another class list fails here, loudly
    dict(type='CheckSegMapValues'),
    dict(
        type='RandomResize',
        scale=(2048, 512),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    dataset=dict(
        data_prefix=dict(seg_map_path=pseudo_mask_dir),
        # keep every listed image, even one whose pseudo mask came out all
        # background
        skip_empty=False,
        # every image must have its pseudo mask: a missing or incomplete
        # folder fails when the dataset is built, naming it
        require_masks=True,
        pipeline=train_pipeline))
