# configs/semples/synthetic.py at test size: a 32x32 synthetic world, a
# ResNetV1c-18 at width 8, a randomly initialised 'semples-synthetic-tiny'
# CLIP, all four phases in 4 + 3 + 3 + 3 iterations (a whole run takes a few
# seconds on 2 cores), no pseudo-mask exports. The tests set data_root (a
# tmp folder; the world is generated there).
_base_ = ['../../../configs/semples/synthetic.py']
data_root = None
synthetic_world = dict(seed=0, num_train=64, num_val=16, image_size=32,
                       context_prob=0.85, progress=False)

cam_iters, match_iters, prompt_iters, refine_iters = 4, 3, 3, 3

model = dict(
    data_preprocessor=dict(size=(32, 32)),
    backbone=dict(stem_channels=8, base_channels=8),
    cam_head=dict(in_channels=64),
    # match and refine at a tenth of the learning rate, so the tests see
    # lr_mult at work
    phases=[
        dict(name='cam', iters=cam_iters, optimizer='cam'),
        dict(name='match', iters=match_iters, optimizer='cam', lr_mult=0.1),
        dict(name='prompt', iters=prompt_iters, optimizer='prompt'),
        dict(name='refine', iters=refine_iters, optimizer='cam',
             lr_mult=0.1),
    ],
    clip=dict(pretrained=None),
    # With this random CLIP, the template without the article puts the
    # image-text cosines inside the loss's clamp range [1e-4, 0.9999], so
    # the matching gradients flow (with 'a photo of a {}.' they clamp).
    text_template='a photo of {}.',
    prompt_learner=dict(length=4))

loader = dict(batch_size=4, num_workers=0, persistent_workers=False,
              dataset=dict(data_root=data_root,
                           synthetic_world=synthetic_world))
# the base's training pipeline at this world's size (the base resizes to 64)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegMapValues'),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(loader, dataset=dict(loader['dataset'],
                                             pipeline=train_pipeline))
val_dataloader = loader
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='PseudoMaskMetric'),
]
test_evaluator = val_evaluator
default_hooks = dict(
    logger=dict(interval=1),
    # every checkpoint kept: the tests resume from several
    checkpoint=dict(interval=2, max_keep_ckpts=-1))
custom_hooks = [dict(type='PhaseLogHook'), dict(type='RandomStateHook')]
env_cfg = dict(dist_cfg=dict(backend='gloo'))
