# configs/semples/voc.py with the prompt phase's crop features computed once
# per image and flip by PromptFeatureBankHook: every trainaug image resized
# to 224x224 (no crop, no padding) and its flip go through the frozen CAM
# network and CLIP when the prompt phase starts; the prompt steps then run
# only CLIP's text encoder (each view is reused about 30 times over the 60
# epochs). Unlike the authors, the prompts learn from these fixed views, not
# from random crops. If you point the training set elsewhere with
# --cfg-options, point prompt_bank_dataset (custom_hooks[2].dataloader) there
# too: a training image missing from the bank fails with a KeyError.
_base_ = ['./voc.py']
prompt_view_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegMapValues', num_classes=21),
    dict(type='Resize', scale={{_base_.crop_size}}, keep_ratio=False),
    dict(type='PackWSSSInputs'),
]
prompt_bank_dataset = dict(
    type={{_base_.dataset_type}},
    data_root={{_base_.data_root}},
    ann_file='ImageSets/Segmentation/trainaug.txt',
    data_prefix=dict(
        img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
    label_seg_map_path='SegmentationClassAug',
    num_classes=21,
    pipeline=prompt_view_pipeline)
custom_hooks = [
    dict(type='SemPLeSPhaseHook', lr_mult=dict(match=0.1, refine=0.1)),
    dict(type='RandomStateHook'),
    dict(type='PromptFeatureBankHook', flip=True,
         dataloader=dict(batch_size=128, num_workers=8,
                         dataset=prompt_bank_dataset)),
    dict(type='PseudoLabelHook', label='cam', phase='cam',
         scales=(1.0, 1.2), bg_threshold=0.43, batch_size=8),
    dict(type='PseudoLabelHook', label='semples', phase='refine',
         scales=(1.0, 1.2), bg_threshold=0.43, batch_size=8),
]
