# SemPLeS on the synthetic world with a tiny WeakTr as the CAM network, the
# authors' CAM network at CPU scale: a 4-block ViT of width 96 (3 heads,
# patch 8: 8 x 8 CAMs at 64 px) with one class token per class and
# WeakTr's head (coarse conv CAM, attention fusion, patch-attention
# refinement), randomly initialised and trained in phase `cam` with
# WeakTr's three multi-label losses, then match -> prompt -> refine as in
# synthetic.py, except that match and refine train only the head and fusion
# (the backbone detached, as the authors' WeakTr runs). Phase lengths,
# learning rates, CLIP and losses are synthetic.py's (not tuned for the
# ViT). Runs through tools/run_experiment.py.
_base_ = ['./synthetic.py']
tiny_width = 96
tiny_layers = 4
tiny_heads = 3
model = dict(
    backbone=dict(
        _delete_=True,
        type='WeakTrViT',
        img_size={{_base_.image_size}},
        patch_size=8,
        embed_dims=tiny_width,
        num_layers=tiny_layers,
        num_heads=tiny_heads,
        num_class_tokens={{_base_.num_fg_classes}},
        drop_path_rate=0.1),
    cam_head=dict(
        _delete_=True,
        type='WeakTrCAMHead',
        in_channels=tiny_width,
        num_classes={{_base_.num_fg_classes}},
        num_layers=tiny_layers,
        num_heads=tiny_heads,
        attn_pool='max',
        # 12 attention maps: a bottleneck of 3 (WeakTr's 8 would leave 1)
        reduction=4),
    detach_backbone_in=('match', 'refine'))
