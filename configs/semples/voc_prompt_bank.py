# configs/semples/voc.py with the prompt phase's crop features computed once
# per image and flip (FixedViewBankCropFeatures): when the prompt phase
# starts, every trainaug image resized to 224x224 (no crop, no padding) and
# its flip go through the frozen CAM network and CLIP; the prompt steps then
# run only CLIP's text encoder (each view is reused about 30 times over the
# 60 epochs) and read no pixels: their pipeline only draws the flip. Unlike
# the authors, the prompts learn from these fixed views, not from random
# crops. The bank lists the training dataset as this file is parsed; if you
# point the training set elsewhere with --cfg-options, point
# model.prompt_crop_features.dataloader.dataset there too (a training image
# missing from the bank fails with a KeyError).
_base_ = ['./voc.py']
model = dict(prompt_crop_features=dict(
    type='FixedViewBankCropFeatures', flip=True,
    dataloader=dict(batch_size=128, num_workers=8,
                    dataset={{_base_.train_dataloader.dataset}}),
    view_pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale={{_base_.semples_crop_size}},
             keep_ratio=False),
        dict(type='PackWSSSInputs'),
    ]))
train_cfg = dict(phase_dataloaders=dict(prompt=dict(dataset=dict(pipeline=[
    dict(type='RandomFlipFlag', prob=0.5),
    dict(type='PackWSSSInputs'),
]))))
