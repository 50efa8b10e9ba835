# A tiny SegFormer (MiT-B0's widths with one block per stage instead of
# two, SegformerHead at half its width) on the embedded synthetic world
# (64x64 images): the same data and 300-iteration schedule as
# configs/deeplabv2/deeplabv2_tiny_synthetic_pseudo.py, trained from
# scratch on CPU in a couple of minutes. The model is mmseg's own MiT-B0
# definition, made shallower.
#
# Point the training masks at the pseudo masks of the synthetic train
# images: pseudo_mask_dir in configs/_base_/datasets/
# synthetic_pseudo_masks.py, or --cfg-options
# train_dataloader.dataset.data_prefix.seg_map_path=/abs/masks (a
# pseudo_mask_dir set here would not reach the dataloader, which the
# base resolves); the ground truth (data/synthetic_world/
# SegmentationClass) gives the fully supervised upper bound.
_base_ = [
    'mmseg::_base_/models/segformer_mit-b0.py',
    '../_base_/datasets/synthetic_pseudo_masks.py',
    '../_base_/schedules/tiny_synthetic_300it.py'
]

num_classes = 6
crop_size = (64, 64)
embed_dims = 32  # as MiT-B0: stages are 1, 2, 5, 8 times this wide

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        embed_dims=embed_dims,
        num_layers=[1, 1, 1, 1],
        # no stochastic depth for a 4-block network trained 300 iterations
        drop_path_rate=0.0,
        init_cfg=None),
    decode_head=dict(
        in_channels=[embed_dims * m for m in (1, 2, 5, 8)],
        channels=128,  # MiT-B0's head: 256
        num_classes=num_classes,
        # one process on CPU: SyncBN (mmseg's default) needs a process group
        norm_cfg=dict(type='BN', requires_grad=True),
        # as the DeepLabV2 configs: the mean over labelled pixels only
        loss_decode=dict(avg_non_ignore=True)))

# mmseg's SegFormer recipe (AdamW, poly) with a from-scratch lr: 6e-5 with
# a x10 head is for an ImageNet-pretrained encoder over 160k iterations.
# On the SemPLeS masks of the synthetic world (seed 0), 300 iterations:
# half these widths (head 64) reached 25.7 and 26.1 val mIoU at lr 1e-3
# and 3e-3; these widths at 3e-3 56.7, and with MiT-B0's two blocks per
# stage 60.4 in twice the time; the tiny DeepLabV2 57.8 on the same masks.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=3e-3, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={
        'pos_block': dict(decay_mult=0.),
        'norm': dict(decay_mult=0.),
    }))
