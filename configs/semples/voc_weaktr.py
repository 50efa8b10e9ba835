# SemPLeS on PASCAL VOC 2012 trainaug as the authors ran it
# (kuongan/SemPLeS README.md lines 119-130; every setting and its source:
# docs/reproducing.md): the CAM network is WeakTr (DeiT-S, 20 class tokens,
# attention fusion max / 8) loaded from its released VOC checkpoint,
# converted with tools/model_converters/weaktr_to_mmseg.py (or
# the checkpoint of configs/weaktr/weaktr_deit_s_voc.py); stages 1-3 are
# the phases match -> prompt -> refine (refine restarts from the loaded
# weights: the segmentor snapshots the CAM network as the first phase
# starts); in match and refine only the CAM head and attention fusion learn,
# the backbone detached and in train mode (drop-path 0.1); batches 64 / 128
# / 64 at lr * batch / 512 (5.12e-4, 0.1, 5.12e-4), 60 epochs each, AdamW
# wd 0.03, cosine, no warm-up; the timm augmentation in match and refine,
# crop and flip for the prompts; CLIP ViT-B/32 fed the ImageNet-normalised
# crops as they are and prompts ending in the '.' token 13; the best epoch
# of match and refine by CAM mIoU on VOC train (1,464, sweep 0.40-0.59);
# masks at the original size, scales 1.0 and 1.2 with flips, background
# 0.43; seed 504. Train with --amp (the authors' mixed precision).
_base_ = ['./voc.py', '../_base_/models/weaktr_deit_s.py']
# (`_base_.x` reads an inherited value where an expression needs it)
# The released WeakTr VOC checkpoint after conversion; set it here, or
# with --cfg-options set the keys it feeds:
#   model.backbone.init_cfg.checkpoint=F model.cam_head.init_cfg.checkpoint=F
weaktr_checkpoint = 'checkpoints/weaktr_voc_mmseg.pth'
prompt_batch_size = 128
# 60 epochs of 10,582 trainaug images, the last partial batch dropped as
# the authors' loaders do: 165 iterations at batch 64, 82 at 128.
match_iters = refine_iters = 60 * (10582 // _base_.batch_size)
prompt_iters = 60 * (10582 // prompt_batch_size)
model = dict(
    backbone=dict(
        _base_.weaktr_backbone, _delete_=True,
        num_class_tokens={{_base_.num_fg_classes}},
        init_cfg=dict(type='Pretrained', checkpoint=weaktr_checkpoint,
                      prefix='backbone.')),
    cam_head=dict(
        _base_.weaktr_cam_head, _delete_=True,
        num_classes={{_base_.num_fg_classes}},
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
             lr_mult=_base_.batch_size / 512, epochs=60),
    ],
    # their timm cosine to 0, stepped after every epoch (main1.py)
    lr_schedule=dict(by_epoch=True),
    detach_backbone_in=('match', 'refine'),
    # the fine CAM upsampled to the crop as the authors do it
    mask_align_corners=True,
    clip=dict(clip_normalize=False, prompt_suffix_ids=(13, )),
    # model selection and validation: scale 1.0 with the flip, as the
    # authors' per-epoch scoring (bg_threshold 0.43 from voc.py); the
    # exports' min-max eps
    test_cfg=dict(flip=True, eps=1e-8))
train_dataloader = dict(
    dataset=dict(pipeline={{_base_.semples_timm_train_pipeline}}))
# validation, selection, masks and the benchmark (VOC val) at each image's
# original size
original_size_pipeline = [
    t for t in _base_.val_pipeline if t['type'] != 'Resize']
val_dataloader = dict(dataset=dict(pipeline=original_size_pipeline))
test_dataloader = dict(dataset=dict(pipeline=original_size_pipeline))
optim_wrapper = dict(
    cam=dict(optimizer=dict(lr=5.12e-4), modules=('cam_head', )),
    prompt=dict(optimizer=dict(lr=0.1)))
train_cfg = dict(
    phase_dataloaders=dict(prompt=dict(
        batch_size=prompt_batch_size,
        dataset=dict(pipeline={{_base_.semples_crop_flip_pipeline}}))))
val_evaluator = {{_base_.semples_selection_evaluator}}
test_evaluator = val_evaluator
custom_hooks = [
    dict(type='PhaseLogHook'),
    dict(type='RandomStateHook'),
    # one evaluation per epoch of match and refine on val_dataloader (VOC
    # train); prompt starts from the best match weights, the masks come
    # from the best refine weights
    dict(type='BestCAMSelectionHook', phases=('match', 'refine')),
    dict(type='PseudoLabelHook', label='semples'),
]
# scales 1.0 and 1.2 with flips (voc.py); the authors' CRF for --crf
pseudo_label_cfg = dict(crf_cfg={{_base_.semples_authors_crf_cfg}})
