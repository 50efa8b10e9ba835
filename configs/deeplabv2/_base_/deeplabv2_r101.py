# DeepLabV2 (ResNet-101, ASPP v2, output stride 8), the model alone: the
# configs that use it add a dataset base (configs/_base_/datasets/*) and a
# schedule (./deeplabv2_r101_20k.py for the WSSS recipe) and set
# num_classes, the crop size and the pretrained checkpoint.

# DeepLab v2 keeps the ImageNet BN statistics (batch 10 is too small to
# re-estimate them): frozen affine and running stats.
norm_cfg = dict(type='BN', requires_grad=False)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(321, 321))  # the crop size; set with the pipeline's crop
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        # torchvision-layout ResNet: loads an ImageNet resnet101 state dict.
        type='ResNet',
        depth=101,
        num_stages=4,
        out_indices=(3, ),
        # output stride 8: stages 3-4 keep stride 1 and dilate instead
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        norm_cfg=norm_cfg,
        norm_eval=True,
        style='pytorch',
        contract_dilation=False,
        # the dataset configs set the local ImageNet checkpoint file
        init_cfg=dict(type='Pretrained', checkpoint=None)),
    decode_head=dict(
        type='DeepLabV2Head',
        in_channels=2048,
        in_index=0,
        num_classes=21,
        dilations=(6, 12, 18, 24),
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
            avg_non_ignore=True)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
