# SemPLeS on your own data: copy, edit the EDIT lines (docs/custom_dataset.md)
_base_ = ['./synthetic.py']
data_root = 'data/my_dataset'  # EDIT: the dataset folder
classes = ('background', 'cat', 'dog')  # EDIT: mask ids 0, 1, 2, ... in order
clip_model = 'local-dir:checkpoints/my_clip'  # EDIT: an open_clip model name
dataset = dict(_delete_=True, type='VOCLayoutWSSSDataset', data_root=data_root,
               metainfo=dict(classes=classes), img_suffix='.jpg',
               data_prefix=dict(img_path='JPEGImages',
                                seg_map_path='SegmentationClass'),
               label_seg_map_path='SegmentationClass')
train_dataloader = dict(dataset=dict(
    dataset, ann_file='ImageSets/Segmentation/train.txt',
    pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(dataset=dict(
    dataset, ann_file='ImageSets/Segmentation/val.txt', test_mode=True,
    pipeline={{_base_.val_pipeline}}))
test_dataloader = val_dataloader
# CLIP weights from its folder; the head and the prompts follow the classes
model = dict(class_names=classes[1:],
             clip=dict(model_name=clip_model, pretrained=None))
