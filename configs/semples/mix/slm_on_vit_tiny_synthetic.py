# Mix example: Segment-Label Matching (our FrozenCLIP + matching loss) on a
# different CAM network, a tiny mmseg VisionTransformer, with no prompt
# phases: phases cam -> match only ("SLM alone").
_base_ = ['../synthetic.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='VisionTransformer',
        img_size=(64, 64),
        patch_size=4,
        embed_dims=96,
        num_layers=4,
        num_heads=3,
        out_indices=(3, ),
        final_norm=True,
        with_cls_token=True,
        output_cls_token=False),
    cam_head=dict(in_channels=96),
    phases=[dict(name='cam', iters=400, optimizer='cam'),
            dict(name='match', iters=300, optimizer='cam')],
    prompt_learner=None, prompt_loss=None, refine_loss=None)
optim_wrapper = dict(
    _delete_=True,
    constructor='ModuleGroupsOptimWrapperConstructor',
    cam=dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
        modules=('backbone', 'neck', 'cam_head')))
# the schedule's second export ('semples', end of training) is SLM's

