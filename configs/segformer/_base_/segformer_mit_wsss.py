# mmseg's SegFormer (MiT-B0 definition, all-MLP SegformerHead) with mmseg's
# SegFormer recipe: AdamW lr 6e-5, betas (0.9, 0.999), weight decay 0.01
# (none on norms and positional blocks), head lr x10, linear warm-up over
# 1500 iterations then poly (power 1.0) to 0, 160k iterations. The configs
# that use it add a pseudo-mask dataset base (configs/_base_/datasets/
# *_pseudo_masks.py), set the encoder's depths (B1 ... B5) and set
# num_classes, the crop size and the ImageNet checkpoint.
_base_ = [
    'mmseg::_base_/models/segformer_mit-b0.py',
    'mmseg::_base_/schedules/schedule_160k.py',
    '../../_base_/default_runtime.py'
]

model = dict(
    # the widths of MiT-B1 to B5 (mmseg's segformer_mit-b1 ... b5 configs:
    # twice B0's); they differ in depth
    backbone=dict(embed_dims=64),
    decode_head=dict(
        in_channels=[64, 128, 320, 512],
        # as the DeepLabV2 configs: the loss averages over labelled pixels
        # only (pseudo masks leave many pixels at 255)
        loss_decode=dict(avg_non_ignore=True)))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=0.00006, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'pos_block': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.),
            'head': dict(lr_mult=10.)
        }))
max_iters = 160000
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=1500,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(
    checkpoint=dict(max_keep_ckpts=2, save_best='mIoU'))
