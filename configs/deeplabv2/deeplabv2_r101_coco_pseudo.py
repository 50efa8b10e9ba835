# DeepLabV2-R101 trained on SemPLeS pseudo masks of COCO 2014 train (82,081
# images), evaluated on COCO 2014 val (40,137) at full resolution, in the
# layout written by tools/dataset_converters/coco2014.py.
#
# Set before training (or with --cfg-options):
#   pretrained_checkpoint: a local ImageNet ResNet-101 state dict in the
#       torchvision layout. ImageNet, not COCO, initialisation.
#   pseudo_mask_dir: the folder of pseudo-mask PNGs (ids 0..80, 255 ignore)
#       for the train images. Absolute, or relative to data_root.
# Crop 481 (VOC uses 321): COCO images are larger (about 640x480 against
# VOC's 500x375), and 481 is the crop many WSSS DeepLabV2 COCO setups use;
# SemPLeS does not state its own. Change crop_size and
# model.data_preprocessor.size together.
# Dataset sections are self-contained: configs/_base_/datasets/coco14_wsss.py
# did not exist when this config was written.
_base_ = ['./_base_/deeplabv2_r101_20k.py']

pretrained_checkpoint = 'checkpoints/resnet101_imagenet_torchvision.pth'
pseudo_mask_dir = 'work_dirs/semples_coco/pseudo_masks'

data_root = 'data/coco2014'
dataset_type = 'COCOWSSSDataset'
num_classes = 81
crop_size = (481, 481)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        init_cfg=dict(checkpoint=pretrained_checkpoint)),
    decode_head=dict(num_classes=num_classes))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegMapValues', num_classes=num_classes),
    # long edge 640 * [0.5, 1.5]: about COCO's own size times 0.5-1.5
    dict(
        type='RandomResize',
        scale=(640, 640),
        ratio_range=(0.5, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]

train_dataloader = dict(
    batch_size=10,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/train2014.txt',
        data_prefix=dict(img_path='train2014', seg_map_path=pseudo_mask_dir),
        skip_empty=False,
        num_classes=num_classes,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/val2014.txt',
        data_prefix=dict(
            img_path='val2014', seg_map_path='SegmentationClass/val2014'),
        test_mode=True,
        num_classes=num_classes,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
