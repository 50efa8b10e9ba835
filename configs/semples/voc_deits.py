# SemPLeS on VOC with a DeiT-S/16 CAM network (mmseg VisionTransformer,
# the backbone family of the authors' WeakTr), ImageNet weights from a local
# file converted to mmseg's ViT layout.
_base_ = ['./voc.py']
deit_checkpoint = 'checkpoints/deit_small_patch16_224-mmseg.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='VisionTransformer',
        img_size=(224, 224),
        patch_size=16,
        embed_dims=384,
        num_layers=12,
        num_heads=6,
        mlp_ratio=4,
        out_indices=(11, ),
        final_norm=True,
        with_cls_token=True,
        output_cls_token=False,
        interpolate_mode='bicubic',
        init_cfg=dict(type='Pretrained', checkpoint=deit_checkpoint)),
    cam_head=dict(in_channels=384),
    channels_last=False)  # a ViT: only its patch embedding is a convolution
