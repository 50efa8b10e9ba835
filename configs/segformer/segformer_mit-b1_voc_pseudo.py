# SegFormer MiT-B1 trained on SemPLeS pseudo masks of PASCAL VOC 2012
# trainaug (10,582 images), evaluated on VOC val (1,449); mmseg's SegFormer
# model and recipe (./_base_/segformer_mit_wsss.py).
#
# Set before training (or with --cfg-options):
#   pretrained_checkpoint: a local ImageNet-1k MiT-B1 encoder in mmseg's
#       layout: mmseg's converted mit_b1_20220624-02e5a6a1.pth (the
#       checkpoint URL in mmseg's configs/segformer/
#       segformer_mit-b1_8xb2-160k_ade20k-512x512.py), or the SegFormer
#       authors' mit_b1.pth converted with mmseg's converter:
#       python mmsegmentation/tools/model_converters/mit2mmseg.py \
#           mit_b1.pth checkpoints/mit_b1_mmseg.pth
#   pseudo_mask_dir (configs/_base_/datasets/voc12_pseudo_masks.py).
# With --cfg-options, set the keys the variables feed, e.g.
#   train_dataloader.dataset.data_prefix.seg_map_path=/abs/pseudo_masks
#   model.backbone.init_cfg.checkpoint=/abs/mit_b1_mmseg.pth
_base_ = [
    '../_base_/datasets/voc12_pseudo_masks.py',
    './_base_/segformer_mit_wsss.py'
]

pretrained_checkpoint = 'checkpoints/mit_b1_mmseg.pth'
num_classes = 21
crop_size = (512, 512)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        num_layers=[2, 2, 2, 2],  # MiT-B1 (mmseg's segformer_mit-b1 config)
        init_cfg=dict(type='Pretrained', checkpoint=pretrained_checkpoint)),
    decode_head=dict(num_classes=num_classes))

# 80k iterations at mmseg's total batch 16: about 120 passes over the
# 10,582 trainaug images, as mmseg's 160k are over ADE20K's 20,210
max_iters = 80000
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
train_cfg = dict(max_iters=max_iters, val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=8000))
# mmseg's 8xb2: 2 images per process, 16 on 8 GPUs; on fewer GPUs raise
# it to keep 16 in total
train_dataloader = dict(batch_size=2)
