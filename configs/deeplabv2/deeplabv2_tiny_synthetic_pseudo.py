# A tiny DeepLabV2 (ResNetV1c-18 at 1/4 width, output stride 8, ASPP v2) on
# the embedded synthetic world (64x64 images): trains from scratch on CPU in
# a couple of minutes. The same code path as the R101 configs, for demos
# and integration tests.
#
# Point the training masks at the pseudo masks of the synthetic train
# images: pseudo_mask_dir in configs/_base_/datasets/
# synthetic_pseudo_masks.py, or --cfg-options
# train_dataloader.dataset.data_prefix.seg_map_path=/abs/masks (a
# pseudo_mask_dir set here would not reach the dataloader, which the
# base resolves); the ground truth (data/synthetic_world/
# SegmentationClass) gives the fully supervised upper bound.
# configs/segformer/segformer_tiny_synthetic_pseudo.py is the same data
# and schedule with a tiny SegFormer.
_base_ = [
    '../_base_/datasets/synthetic_pseudo_masks.py',
    '../_base_/schedules/tiny_synthetic_300it.py', './_base_/deeplabv2_r101.py'
]

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

# From scratch the WSSS recipe's lr (2.5e-4 for a pretrained backbone) is
# far too small: a larger lr, no head multiplier, a short schedule.
optimizer = dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=5e-4)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=optimizer,
    clip_grad=None,
    paramwise_cfg=dict(custom_keys={'decode_head': dict(lr_mult=1.0)}))
