# WeakTr's CAM network (hustvl/WeakTr models.py, AAF.py): DeiT-S/16 with
# one class token per class slot (WeakTrViT) and the coarse conv CAM refined
# by adaptive attention fusion (WeakTrCAMHead). The leaves add the class
# counts of their dataset and the weights: ImageNet DeiT-S for WeakTr's own
# stage (configs/weaktr/), a converted WeakTr checkpoint for SemPLeS
# (configs/semples/*_weaktr.py). Nothing here is a model: a leaf places
# these dicts into model.backbone and model.cam_head.
#
# ImageNet DeiT-S, timm layout (WeakTr's --finetune default,
# deit_small_patch16_224-cd65a155.pth); a local file: set it here, or with
# --cfg-options set the key it feeds, model.backbone.init_cfg.checkpoint=F
weaktr_deit_checkpoint = 'checkpoints/deit_small_patch16_224-cd65a155.pth'
weaktr_embed_dims = 384
weaktr_num_layers = 12
weaktr_num_heads = 6
weaktr_backbone = dict(
    type='WeakTrViT',
    img_size=224,  # the position grid of DeiT's and WeakTr's checkpoints
    patch_size=16,
    embed_dims=weaktr_embed_dims,
    num_layers=weaktr_num_layers,
    num_heads=weaktr_num_heads,
    mlp_ratio=4.0,
    qkv_bias=True,
    drop_path_rate=0.1)  # WeakTr's --drop-path; active in train mode
# Token pooling and bottleneck of the attention fusion, VOC: max and 8, as
# every VOC command passes them (SemPLeS README.md lines 119-128, WeakTr
# docs/Training.md lines 14-15).
weaktr_cam_head = dict(
    type='WeakTrCAMHead',
    in_channels=weaktr_embed_dims,
    num_layers=weaktr_num_layers,
    num_heads=weaktr_num_heads,
    attn_pool='max',
    reduction=8,
    feat_reduction=8)
# COCO: avg and 4, as every COCO command of SemPLeS passes them (README.md
# lines 137-147) and as the WeakTr COCO training bundled with SemPLeS runs
# by main.py's defaults (docs/Training.md lines 63-70, main.py lines 60-61).
# A checkpoint of another reduction is refused by name when it loads; the
# pooling leaves no trace in the weights (docs/reproducing.md).
weaktr_coco_cam_head = dict(weaktr_cam_head, attn_pool='avg', reduction=4)
# WeakTr's COCO model has 90 class slots, slot = COCO category id - 1 (ids
# 1..90, the ten without a category included: its label vectors and masks
# index the 91-name COCO list). A COCO dataset's 80 classes, in category-id
# order, are these slots.
weaktr_coco_num_slots = 90
weaktr_coco_unused_ids = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)
weaktr_coco_class_slots = tuple(
    category_id - 1 for category_id in range(1, weaktr_coco_num_slots + 1)
    if category_id not in weaktr_coco_unused_ids)
