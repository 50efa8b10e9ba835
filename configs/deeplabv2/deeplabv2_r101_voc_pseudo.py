# DeepLabV2-R101 trained on SemPLeS pseudo masks of PASCAL VOC 2012 trainaug
# (10,582 images), evaluated on VOC val (1,449) at full resolution.
#
# Set before training (or with --cfg-options):
#   pretrained_checkpoint: a local ImageNet ResNet-101 state dict in the
#       torchvision layout (e.g. torchvision's resnet101 weights saved to
#       disk). ImageNet, not COCO, initialisation: COCO-pretrained DeepLab
#       inflates WSSS results by 1-3 points.
#   pseudo_mask_dir: the folder of pseudo-mask PNGs (ids 0..20, 255 ignore,
#       one <img_id>.png per trainaug image) written by
#       tools/make_pseudo_labels.py or the PseudoLabelHook. A relative path
#       is taken from the directory you run tools/train.py in.
# With --cfg-options, set the keys the variables feed, e.g.
#   train_dataloader.dataset.data_prefix.seg_map_path=/abs/pseudo_masks
#   model.backbone.init_cfg.checkpoint=/abs/resnet101.pth
import os.path as osp

_base_ = [
    '../_base_/datasets/voc12_wsss.py', './_base_/deeplabv2_r101_20k.py'
]

pretrained_checkpoint = 'checkpoints/resnet101_imagenet_torchvision.pth'
pseudo_mask_dir = 'work_dirs/semples_voc/pseudo_masks'
# mmengine would join a relative data_prefix onto data_root; resolve it here
pseudo_mask_dir = osp.abspath(pseudo_mask_dir)

num_classes = 21
crop_size = (321, 321)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=dict(checkpoint=pretrained_checkpoint)),
    decode_head=dict(num_classes=num_classes))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    # a pseudo mask written with another class list fails here, loudly
    dict(type='CheckSegMapValues'),
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
# DeepLab is evaluated at full resolution (no resize)
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
        # keep every listed image: DeepLab trains on its pseudo mask even if
        # it came out all background
        skip_empty=False,
        # every image must have its pseudo mask: a missing or incomplete
        # folder fails when the dataset is built, naming it
        require_masks=True,
        pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
