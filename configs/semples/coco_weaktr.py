# SemPLeS on MS COCO 2014 train (82,081 images with objects) as the authors
# ran it (kuongan/SemPLeS README.md lines 137-149; every setting and its
# source: docs/reproducing.md): WeakTr's COCO CAM network (DeiT-S, 90 class
# slots, of which the 80 categories are read out; attention fusion with
# avg pooling and reduction 4, as the authors' COCO commands pass),
# converted with tools/model_converters/weaktr_to_mmseg.py (or the
# checkpoint of configs/weaktr/weaktr_deit_s_coco.py); match -> prompt ->
# refine with the backbone detached in match and refine; batches 32 / 128 /
# 24 at lr * batch / 512 (5.12e-6, 0.01, 5.12e-6), 60 epochs each; the timm
# augmentation in match and refine, crop and flip for the prompts; CLIP
# ViT-B/32 without its own normalisation and the '.' token 13; the best
# epoch of match and refine by CAM mIoU on WeakTr's 1,250-image train
# subset; masks at the original size, scales 1.0, 0.8 and 1.2 with flips,
# background 0.42; seed 504. Train with --amp.
_base_ = ['./coco.py', '../_base_/models/weaktr_deit_s.py']
# (`_base_.x` reads an inherited value where an expression needs it)
# The released WeakTr COCO checkpoint after conversion (--cfg-options: the
# keys it feeds, as in voc_weaktr.py).
weaktr_checkpoint = 'checkpoints/weaktr_coco_mmseg.pth'
prompt_batch_size = 128
refine_batch_size = 24
# 60 epochs of 82,081 images, last partial batch dropped: 2,565 iterations
# at batch 32, 641 at 128, 3,420 at 24.
match_iters = 60 * (82081 // _base_.batch_size)
prompt_iters = 60 * (82081 // prompt_batch_size)
refine_iters = 60 * (82081 // refine_batch_size)
model = dict(
    backbone=dict(
        _base_.weaktr_backbone, _delete_=True,
        num_class_tokens={{_base_.weaktr_coco_num_slots}},
        init_cfg=dict(type='Pretrained', checkpoint=weaktr_checkpoint,
                      prefix='backbone.')),
    cam_head=dict(
        _base_.weaktr_coco_cam_head, _delete_=True,
        num_classes={{_base_.num_fg_classes}},
        num_class_slots={{_base_.weaktr_coco_num_slots}},
        class_indices={{_base_.weaktr_coco_class_slots}},
        init_cfg=dict(type='Pretrained', checkpoint=weaktr_checkpoint,
                      prefix='cam_head.')),
    channels_last=False,  # a ViT: only its patch embedding is a convolution
    # lr_mult: the authors' linear scaling, lr * batch / 512; 60 epochs
    phases=[
        dict(name='match', iters=match_iters, optimizer='cam',
             lr_mult=_base_.batch_size / 512, epochs=60),
        dict(name='prompt', iters=prompt_iters, optimizer='prompt',
             lr_mult=prompt_batch_size / 512, epochs=60),
        dict(name='refine', iters=refine_iters, optimizer='cam',
             lr_mult=refine_batch_size / 512, epochs=60),
    ],
    # their timm cosine to 0, stepped after every epoch (main1.py)
    lr_schedule=dict(by_epoch=True),
    detach_backbone_in=('match', 'refine'),
    mask_align_corners=True,
    clip=dict(clip_normalize=False, prompt_suffix_ids=(13, )),
    # selection and validation: scale 1.0 with the flip (bg 0.42, coco.py);
    # the exports' min-max eps
    test_cfg=dict(flip=True, eps=1e-8))
train_dataloader = dict(
    dataset=dict(pipeline={{_base_.semples_timm_train_pipeline}}))
# validation and the masks at each image's original size (no Resize)
export_pipeline = [t for t in _base_.val_pipeline if t['type'] != 'Resize']
val_dataloader = dict(dataset=dict(pipeline=export_pipeline))
test_dataloader = val_dataloader
# Model selection on WeakTr's coco/train_1250_id.txt, the list every
# SemPLeS COCO command passes (README.md lines 137-141), written as
# ImageSets/train2014_1250.txt with our file stems (docs/reproducing.md).
selection_dataloader = dict(
    batch_size=1, num_workers=4,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_base_.train_dataloader.dataset,
                 ann_file='ImageSets/train2014_1250.txt', test_mode=True,
                 pipeline=export_pipeline))
optim_wrapper = dict(
    cam=dict(optimizer=dict(lr=5.12e-6), modules=('cam_head', )),
    prompt=dict(optimizer=dict(lr=0.01)))
train_cfg = dict(
    phase_dataloaders=dict(
        prompt=dict(
            batch_size=prompt_batch_size,
            dataset=dict(pipeline={{_base_.semples_crop_flip_pipeline}})),
        refine=dict(batch_size=refine_batch_size)))
val_evaluator = {{_base_.semples_selection_evaluator}}
test_evaluator = val_evaluator
custom_hooks = [
    dict(type='PhaseLogHook'),
    dict(type='RandomStateHook'),
    dict(type='BestCAMSelectionHook', phases=('match', 'refine'),
         dataloader=selection_dataloader),
    dict(type='PseudoLabelHook', label='semples'),
]
# scales 1.0, 0.8 and 1.2 with flips (coco.py); the authors' CRF for --crf
pseudo_label_cfg = dict(crf_cfg={{_base_.semples_authors_crf_cfg}})
