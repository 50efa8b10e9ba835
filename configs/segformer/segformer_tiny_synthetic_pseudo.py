# A tiny SegFormer (MiT at half of MiT-B0's widths, one block per stage,
# SegformerHead) on the embedded synthetic world (64x64 images): the same
# data and 300-iteration schedule as
# configs/deeplabv2/deeplabv2_tiny_synthetic_pseudo.py, trained from
# scratch on CPU in a couple of minutes. The model is mmseg's own MiT-B0
# definition, narrowed.
#
# Set pseudo_mask_dir (configs/_base_/datasets/synthetic_pseudo_masks.py)
# to the pseudo masks of the synthetic train images; the ground truth
# (data/synthetic_world/SegmentationClass) gives the fully supervised upper
# bound.
_base_ = [
    'mmseg::_base_/models/segformer_mit-b0.py',
    '../_base_/datasets/synthetic_pseudo_masks.py',
    '../_base_/schedules/tiny_synthetic_300it.py'
]

num_classes = 6
crop_size = (64, 64)
embed_dims = 16  # MiT-B0: 32; stages are 1, 2, 5, 8 times this wide

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
        channels=64,
        num_classes=num_classes,
        # one process on CPU: SyncBN (mmseg's default) needs a process group
        norm_cfg=dict(type='BN', requires_grad=True),
        # as the DeepLabV2 configs: the mean over labelled pixels only
        loss_decode=dict(avg_non_ignore=True)))

# mmseg's SegFormer recipe (AdamW, poly) with a from-scratch lr: 6e-5 with
# a x10 head is for an ImageNet-pretrained encoder over 160k iterations.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={
        'pos_block': dict(decay_mult=0.),
        'norm': dict(decay_mult=0.),
    }))
