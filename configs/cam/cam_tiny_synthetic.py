# The plain CAM baseline on the synthetic world: phase 'cam' only (stage 0),
# the same network, data and schedule as configs/semples/synthetic.py's
# first phase, so its pseudo masks are the ablation's "CAM" row.
_base_ = ['../semples/synthetic.py']
model = dict(
    phases=[dict(name='cam', iters={{_base_.cam_iters}}, optimizer='cam')],
    clip=None, prompt_learner=None, match_loss=None, prompt_loss=None,
    refine_loss=None)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4))
# one export: the end of training is the end of `cam`
custom_hooks = [
    dict(type='PhaseLogHook'),
    dict(type='RandomStateHook'),
    dict(type='PseudoLabelHook', label='cam'),
]
