# DeepLabV2-R101 trained on SemPLeS pseudo masks of PASCAL VOC 2012 trainaug
# (10,582 images), evaluated on VOC val (1,449) at full resolution.
#
# Set before training (or with --cfg-options):
#   pretrained_checkpoint: a local ImageNet ResNet-101 state dict in the
#       torchvision layout (e.g. torchvision's resnet101 weights saved to
#       disk). ImageNet, not COCO, initialisation: COCO-pretrained DeepLab
#       inflates WSSS results by 1-3 points.
#   pseudo_mask_dir: the folder of pseudo-mask PNGs (ids 0..20, 255 ignore,
#       one <img_id>.png per training image) written by
#       tools/make_pseudo_labels.py or the PseudoLabelHook. Absolute, or
#       relative to data_root.
# The dataset sections are written here, not taken from
# configs/_base_/datasets/voc12_wsss.py: that file did not exist when this
# config was written, and DeepLab needs its own (crop 321) pipelines anyway.
_base_ = ['./_base_/deeplabv2_r101_20k.py']

pretrained_checkpoint = 'checkpoints/resnet101_imagenet_torchvision.pth'
pseudo_mask_dir = 'work_dirs/semples_voc/pseudo_masks'

data_root = 'data/VOCdevkit/VOC2012'
dataset_type = 'PascalVOCWSSSDataset'
num_classes = 21
crop_size = (321, 321)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        init_cfg=dict(checkpoint=pretrained_checkpoint)),
    decode_head=dict(num_classes=num_classes))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    # a pseudo mask written with another class list fails here, loudly
    dict(type='CheckSegMapValues', num_classes=num_classes),
    # long edge 512 * [0.5, 1.5]: about VOC's own size (500) times 0.5-1.5
    dict(
        type='RandomResize',
        scale=(512, 512),
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
        # mmseg's VOC-aug converter writes this list (trainaug minus val)
        ann_file='ImageSets/Segmentation/aug.txt',
        data_prefix=dict(img_path='JPEGImages', seg_map_path=pseudo_mask_dir),
        # keep every listed image: DeepLab trains on its pseudo mask even if
        # it came out all background
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
        ann_file='ImageSets/Segmentation/val.txt',
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        test_mode=True,
        num_classes=num_classes,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
