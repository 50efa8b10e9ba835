# configs/semples/synthetic.py with the prompt phase's crop features
# computed once per image and flip (FixedViewBankCropFeatures), the
# synthetic counterpart of voc_prompt_bank.py: when the prompt phase starts,
# every training image (already at the crop size) and its flip go through
# the frozen CAM network and CLIP once; the prompt steps then run only
# CLIP's text encoder and read no pixels (their pipeline only draws the
# flip). The bank lists the training dataset as this file is parsed; if you
# point the training set elsewhere with --cfg-options, point
# model.prompt_crop_features.dataloader.dataset there too.
_base_ = ['./synthetic.py']
model = dict(prompt_crop_features=dict(
    type='FixedViewBankCropFeatures', flip=True,
    dataloader=dict(batch_size=64, num_workers=0,
                    dataset={{_base_.train_dataloader.dataset}}),
    view_pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale={{_base_.crop_size}}, keep_ratio=False),
        dict(type='PackWSSSInputs'),
    ]))
train_cfg = dict(phase_dataloaders=dict(prompt=dict(dataset=dict(pipeline=[
    dict(type='RandomFlipFlag', prob=0.5),
    dict(type='PackWSSSInputs'),
]))))
