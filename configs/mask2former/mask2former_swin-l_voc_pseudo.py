# Mask2Former Swin-L on SemPLeS pseudo masks of PASCAL VOC 2012 trainaug,
# evaluated on VOC val, as FMA-WSSS trains it
# (./_base_/mask2former_swin-l_fma-wsss.py). GPU only: needs
# onedl-mmdetection and mmcv's compiled ops.
#
# Set pseudo_mask_dir and pretrained_checkpoint (the base) before training,
# or with --cfg-options
#   train_dataloader.dataset.data_prefix.seg_map_path=/abs/pseudo_masks
#   model.backbone.init_cfg.checkpoint=/abs/swin_l_22k_mmseg.pth
# The dataset entries repeat configs/_base_/datasets/voc12_wsss.py: the
# Mask2Former base is a whole mmseg ADE20K config, and mmengine refuses two
# bases that set the same keys, so they replace its data here.
import os.path as osp

_base_ = ['./_base_/mask2former_swin-l_fma-wsss.py']

pseudo_mask_dir = 'work_dirs/semples_voc/pseudo_masks'
# mmengine would join a relative data_prefix onto data_root; resolve it here
pseudo_mask_dir = osp.abspath(pseudo_mask_dir)

num_classes = 21
dataset_type = 'PascalVOCWSSSDataset'
data_root = 'data/VOCdevkit/VOC2012'
model = dict(
    decode_head=dict(
        num_classes=num_classes,
        # mmseg's weights: 1 per class, 0.1 for "no object"
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])))

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/trainaug.txt',
        data_prefix=dict(img_path='JPEGImages', seg_map_path=pseudo_mask_dir),
        # image labels from the ground truth masks
        label_seg_map_path='SegmentationClassAug',
        skip_empty=False,
        # every image must have its pseudo mask
        require_masks=True,
        pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/val.txt',
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        label_seg_map_path='SegmentationClass',
        test_mode=True,
        pipeline={{_base_.val_pipeline}}))
test_dataloader = val_dataloader
