# WeakTr's own stage (its "End-to-End CAM Generation", this project's phase
# `cam`) on PASCAL VOC 2012 trainaug (10,582 images), from ImageNet DeiT-S,
# with the settings of WeakTr's docs/Training.md and main.py defaults
# (hustvl/WeakTr): batch 64, lr 6e-4 * 64 / 512, AdamW wd 0.03, cosine to
# 1e-5, 60 epochs, 224 crops with the timm recipe (RandAugment, random
# erasing), drop-path 0.1, fusion max / 8, WeakTr's three multi-label
# losses; best epoch by CAM mIoU on VOC train (1,464), masks at scales 1.0
# and 1.2 with flips. Its checkpoint replaces the released one in
# configs/semples/voc_weaktr.py. Deviations: docs/reproducing.md.
_base_ = ['../semples/voc.py', '../_base_/models/weaktr_deit_s.py']
# (`_base_.x` reads an inherited value where an expression needs it)
weaktr_lr = 6e-4  # WeakTr's --lr, scaled by batch / 512 (the phase lr_mult)
weaktr_min_lr = 1e-5  # WeakTr's --min-lr, the end of its cosine
weaktr_warmup_lr = 1e-6  # WeakTr's --warmup-lr, the start of its warm-up
weaktr_peak_lr = weaktr_lr * _base_.batch_size / 512
# 60 epochs of 10,582 // 64 = 165 iterations (WeakTr's loader drops the
# last partial batch).
cam_iters = 60 * (10582 // _base_.batch_size)
model = dict(
    backbone=dict(
        _base_.weaktr_backbone, _delete_=True,
        num_class_tokens={{_base_.num_fg_classes}},
        init_cfg=dict(type='Pretrained',
                      checkpoint={{_base_.weaktr_deit_checkpoint}})),
    cam_head=dict(_base_.weaktr_cam_head, _delete_=True,
                  num_classes={{_base_.num_fg_classes}}),
    channels_last=False,  # a ViT: only its patch embedding is a convolution
    # the head's three losses (cls_loss_weight cam=1): class tokens, coarse
    # and fine logits
    phases=[dict(name='cam', iters=cam_iters, optimizer='cam',
                 lr_mult=_base_.batch_size / 512, epochs=60)],
    # WeakTr's timm schedule, stepped after every epoch: 5 warm-up epochs
    # from --warmup-lr, then the cosine to --min-lr
    lr_schedule=dict(
        by_epoch=True, warmup_epochs=5,
        warmup_ratio=weaktr_warmup_lr / weaktr_peak_lr,
        eta_min_ratio=weaktr_min_lr / weaktr_peak_lr),
    # phase cam needs none of the CLIP parts
    clip=None, prompt_learner=None, match_loss=None, prompt_loss=None,
    refine_loss=None,
    # model selection and validation as WeakTr scores its epochs: scale
    # 1.0 with the flip (bg_threshold 0.43 from voc.py); WeakTr's min-max
    # eps
    test_cfg=dict(flip=True, eps=1e-8))
train_dataloader = dict(
    dataset=dict(pipeline={{_base_.semples_timm_train_pipeline}}))
# validation and the masks at each image's original size (no Resize)
val_dataloader = dict(dataset=dict(pipeline=[
    t for t in _base_.val_pipeline if t['type'] != 'Resize']))
test_dataloader = val_dataloader
optim_wrapper = dict(cam=dict(optimizer=dict(lr=weaktr_lr)), prompt=None)
val_evaluator = {{_base_.semples_selection_evaluator}}
test_evaluator = val_evaluator
custom_hooks = [
    dict(type='PhaseLogHook'),
    dict(type='RandomStateHook'),
    # the best epoch (one evaluation per epoch, threshold sweep) is kept
    dict(type='BestCAMSelectionHook', phases=('cam', )),
    dict(type='PseudoLabelHook', label='cam', phase='cam'),
]
# masks at scales 1.0 and 1.2 with flips (voc.py); WeakTr's CRF for --crf
pseudo_label_cfg = dict(crf_cfg={{_base_.semples_authors_crf_cfg}})
