# SemPLeS on MS COCO 2014 train (82,081 images) with the authors' COCO
# settings (kuongan/SemPLeS README.md lines 137-141; sources in
# docs/reproducing.md): lambda 0.75, gamma 0.01, w 0.2, AdamW
# wd 0.03, lr 5.12e-6 * batch / 512 in stages 1 and 3, 0.01 * 128 / 512 for
# the prompts, 224 crops. Batch 32 in every phase (authors: 32 / 128 / 24).
_base_ = ['../_base_/datasets/coco14_wsss.py', '../_base_/semples_recipe.py']
# 60 epochs of 82,081 images at batch 32 would be 153,900 iterations per
# stage; like most re-implementations we default to 10 epochs per stage.
cam_iters = match_iters = prompt_iters = refine_iters = 25650
batch_size = 32
crop_size = {{_base_.semples_crop_size}}  # the training crops
model = dict(
    # COCO's 80 category names (the dataset's classes without background)
    class_names={{_base_.fg_class_names}},
    phases=[
        dict(name='cam', iters=cam_iters, optimizer='cam'),
        dict(name='match', iters=match_iters, optimizer='cam', lr_mult=0.1),
        dict(name='prompt', iters=prompt_iters, optimizer='prompt'),
        dict(name='refine', iters=refine_iters, optimizer='cam',
             lr_mult=0.1),
    ],
    match_loss=dict(bg_weight=0.75),
    prompt_loss=dict(text_weight=0.01),
    refine_loss=dict(loss_weight=0.2),
    # WeakTr's COCO background threshold, for validation and the masks
    test_cfg=dict(bg_threshold=0.42))
train_dataloader = dict(
    batch_size=batch_size, num_workers=8,
    dataset=dict(pipeline={{_base_.semples_train_pipeline}}))
# CAM validation on COCO val 2014 (40,137 images: slow; subset the list
# for quick looks).
optim_wrapper = dict(
    # stage 0 at 10x the stage-1/3 rate (the phases' lr_mult)
    cam=dict(optimizer=dict(lr=10 * 5.12e-6 * batch_size / 512,
                            weight_decay=0.03)),
    prompt=dict(optimizer=dict(lr=0.01 * 128 / 512, weight_decay=0.03)))
val_evaluator = {{_base_.semples_evaluator}}
test_evaluator = val_evaluator
# pseudo masks at the authors' COCO scales
pseudo_label_cfg = dict(scales=(1.0, 0.8, 1.2), flip=True, crf=False,
                        batch_size=8)
