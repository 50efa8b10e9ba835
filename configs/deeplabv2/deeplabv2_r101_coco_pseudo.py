# DeepLabV2-R101 trained on SemPLeS pseudo masks of COCO 2014 train (82,081
# images), evaluated on COCO 2014 val (40,137) at full resolution, in the
# layout written by tools/dataset_converters/coco2014.py.
#
# Set before training (or with --cfg-options, see the VOC config):
#   pretrained_checkpoint: a local ImageNet ResNet-101 state dict in the
#       torchvision layout. ImageNet, not COCO, initialisation.
#   pseudo_mask_dir: the folder of pseudo-mask PNGs (ids 0..80, 255 ignore)
#       for the train images. A relative path is taken from the directory
#       you run tools/train.py in.
# Crop 481 (VOC uses 321): COCO images are larger (about 640x480 against
# VOC's 500x375), so 481 covers a similar share of the image, and it is the
# crop several WSSS DeepLabV2 COCO setups use; SemPLeS does not state its
# own. Change crop_size and model.data_preprocessor.size together.
import os.path as osp

_base_ = [
    '../_base_/datasets/coco14_wsss.py', './_base_/deeplabv2_r101_20k.py'
]

pretrained_checkpoint = 'checkpoints/resnet101_imagenet_torchvision.pth'
pseudo_mask_dir = 'work_dirs/semples_coco/pseudo_masks'
# mmengine would join a relative data_prefix onto data_root; resolve it here
pseudo_mask_dir = osp.abspath(pseudo_mask_dir)

num_classes = 81
crop_size = (481, 481)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=dict(checkpoint=pretrained_checkpoint)),
    decode_head=dict(num_classes=num_classes))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegMapValues'),
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
val_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
test_pipeline = val_pipeline

train_dataloader = dict(
    batch_size=10,
    dataset=dict(
        data_prefix=dict(seg_map_path=pseudo_mask_dir),
        skip_empty=False,
        # every image must have its pseudo mask: a missing or incomplete
        # folder fails when the dataset is built, naming it
        require_masks=True,
        pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
