# Mask2Former Swin-L on SemPLeS pseudo masks of COCO 2014 train, evaluated
# on COCO 2014 val, as FMA-WSSS trains it: ./mask2former_swin-l_voc_pseudo.py
# with COCO's data (as configs/_base_/datasets/coco14_wsss.py), classes and
# FMA-WSSS's COCO schedule. GPU only: needs onedl-mmdetection and mmcv's
# compiled ops.
#
# Set pseudo_mask_dir and pretrained_checkpoint (the base) before training,
# or with --cfg-options (see the VOC config).
import os.path as osp

_base_ = ['./mask2former_swin-l_voc_pseudo.py']

pseudo_mask_dir = 'work_dirs/semples_coco/pseudo_masks'
# mmengine would join a relative data_prefix onto data_root; resolve it here
pseudo_mask_dir = osp.abspath(pseudo_mask_dir)

num_classes = 81
dataset_type = 'COCOWSSSDataset'
data_root = 'data/coco2014'
model = dict(
    decode_head=dict(
        num_classes=num_classes,
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])))

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/train2014.txt',
        data_prefix=dict(img_path='train2014', seg_map_path=pseudo_mask_dir),
        label_seg_map_path='SegmentationClass/train2014'))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/val2014.txt',
        data_prefix=dict(
            img_path='val2014', seg_map_path='SegmentationClass/val2014'),
        label_seg_map_path='SegmentationClass/val2014'))
test_dataloader = val_dataloader

# FMA-WSSS's COCO run: 100k iterations (m2f-sl22-bt4-100k-512x-COCO.py)
max_iters = 100000
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=0,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(max_iters=max_iters)
