# A small CAM network for the synthetic world: ResNet-18 layout at a quarter
# of the width, output stride 4 (16x16 CAMs for 64x64 images).
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(64, 64))
cam_backbone = dict(
    type='ResNetV1c',
    depth=18,
    stem_channels=16,
    base_channels=16,
    strides=(1, 1, 1, 1),
    dilations=(1, 2, 4, 4),
    out_indices=(3, ),
    norm_cfg=norm_cfg,
    contract_dilation=True)
# num_classes: the model's class names
cam_head = dict(type='CAMHead', in_channels=128, pool='gap')
