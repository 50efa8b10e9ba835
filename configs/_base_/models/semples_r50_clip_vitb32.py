# SemPLeS with an mmseg ResNet-50 CAM network (ImageNet weights from a local
# file) and OpenAI's CLIP ViT-B/32 (a local file), as in the authors' runs
# (their CAM network was WeakTr/DeiT-S; see configs/semples/voc_deits.py).
# Set these two paths here (with --cfg-options, set the keys they feed:
# model.backbone.init_cfg.checkpoint=F model.clip.pretrained=F):
backbone_checkpoint = 'checkpoints/resnet50_v1c-2cccc1ad.pth'  # mmcv/mmseg R50-V1c
clip_checkpoint = 'checkpoints/ViT-B-32.pt'  # OpenAI CLIP (TorchScript .pt)
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(224, 224))
model = dict(
    type='SemPLeS',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNetV1c',
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        strides=(1, 2, 2, 1),  # output stride 16: 14x14 CAMs at 224
        dilations=(1, 1, 1, 2),
        norm_cfg=norm_cfg,
        norm_eval=True,  # batch statistics of ImageNet; small CAM batches
        init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)),
    # num_classes: the model's class names
    cam_head=dict(type='CAMHead', in_channels=2048, pool='gap'),
    # ResNet-50 in channels-last order: on the 2-core CPU (batch 8, 224)
    # cam 1.19x, match 1.08x, export 1.27x faster; expected to help more on
    # GPU tensor cores (unmeasured)
    channels_last=True,
    clip=dict(
        type='FrozenCLIP',
        model_name='ViT-B-32',
        pretrained=clip_checkpoint,
        image_chunk_size=128),
    # class_names: the model's; width: CLIP's text width
    prompt_learner=dict(type='BackgroundPromptLearner', length=30),
    match_loss=dict(type='SegmentLabelMatchingLoss'),
    prompt_loss=dict(type='ContrastivePromptLoss'),
    refine_loss=dict(type='PromptRefinementLoss'),
    test_cfg=dict(bg_threshold=0.45))
