# The embedded synthetic world (VOC layout) under data_root (relative to the
# working directory): tools/train.py and tools/run_experiment.py generate it
# when it is missing, tools/misc/generate_synthetic_world.py alone.
custom_imports = dict(imports=['semples_mm'], allow_failed_imports=False)

dataset_type = 'SyntheticWSSSDataset'
data_root = 'data/synthetic_world'
class_names = ('background', 'boat', 'plane', 'train', 'cow', 'bird')
num_classes = 6  # with background: decode heads, IoUMetric
num_fg_classes = 5  # image-level labels, CAM heads
context_names = ('water', 'sky', 'rails', 'grass', 'trees')
image_size = 64
crop_size = (64, 64)
synthetic_world = dict(
    seed=0, num_train=2000, num_val=300, image_size=image_size,
    context_prob=0.85)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegMapValues'),
    # a no-op on the world's 64x64 images; one batch size for other data
    dict(type='Resize', scale=crop_size, keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackWSSSInputs'),
]
val_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegMapValues'),
    dict(type='PackWSSSInputs'),
]
test_pipeline = val_pipeline

train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train.txt',
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        img_suffix='.png',
        # labels from the ground truth even when seg_map_path is changed
        # to pseudo masks
        label_seg_map_path='SegmentationClass',
        metainfo=dict(classes=class_names),
        synthetic_world=synthetic_world,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/val.txt',
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        img_suffix='.png',
        label_seg_map_path='SegmentationClass',
        metainfo=dict(classes=class_names),
        synthetic_world=synthetic_world,
        test_mode=True,
        pipeline=val_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
