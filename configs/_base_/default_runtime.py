default_scope = 'mmseg'
# custom_imports comes with the dataset base configs.
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
# No fixed name: mmengine keeps one visualizer per name for the whole
# process, so runs in one process (tools/run_experiment.py, --seeds) would all
# write to the first run's folder; unnamed, each run's is named after it.
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends)
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
tta_model = dict(type='SegTTAModel')
