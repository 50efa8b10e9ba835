"""Rerun an experiment run's refine (or prompt + refine) phase with one change.

Scores the pseudo masks as the experiment runner does.

    python tools/analysis_tools/rerun_phases.py RUN_DIR --work-dir W \
        [--phases refine | prompt refine] [--refine-weight 0.2] \
        [--prompt-iters 200] [--prompt-length 16] [--seed S] \
        [--num-threads 1] [--cfg-options key=value ...]

RUN_DIR is one seed's folder of ``tools/run_experiment.py``
(``configs/semples.py``, ``semples/iter_<last>.pth``,
``semples/cam_network_after_{cam,match}.pth``).
The rerun trains ``W/semples.py``: that run's config with only the phases
named (each as long as there unless changed), starting from that run's
state at the phase start, everything else equal:

- ``--phases refine``: the CAM network of the end of ``cam`` (where refine
  restarts) and the prompts the run learnt (frozen in refine);
- ``--phases prompt refine``: the CAM network of the end of ``match``
  (frozen while the prompts learn) with the end of ``cam`` as the snapshot
  refine restarts from, and freshly initialised prompts.

The run's own pseudo-mask export settings, image list and PseudoMaskMetric
(its background-threshold sweep) then score ``W/cam_network_after_refine.pth``
(``W/pseudo_masks/``, ``W/summary.json``; a line ``W/result.json``). The
training data order follows ``--seed`` (default: the run's): reruns that
differ in one setting see the same batches, but not the batches the run's
own refine phase saw.
"""
import argparse
import copy
import json
import os
import os.path as osp
import time

import torch
from mmengine.config import Config, DictAction

CAM_PREFIXES = ('backbone.', 'neck.', 'cam_head.')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n', 2)[2])
    parser.add_argument('run_dir',
                        help="a seed's folder of tools/run_experiment.py")
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--phases', nargs='+', default=['refine'],
                        choices=['prompt', 'refine'])
    parser.add_argument('--refine-weight', type=float, default=None,
                        help='w of the refinement term (default: the run\'s)')
    parser.add_argument('--prompt-iters', type=int, default=None)
    parser.add_argument('--prompt-length', type=int, default=None)
    parser.add_argument('--refine-iters', type=int, default=None)
    parser.add_argument('--seed', type=int, default=None,
                        help='randomness seed (data order, flips); default: '
                        "the run's")
    parser.add_argument('--num-threads', type=int, default=None)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def run_files(run_dir):
    """The config, final checkpoint and phase-end CAM networks of a run."""
    from semples_mm.models.segmentors import PhaseSchedule
    from semples_experiments.runner.run import final_checkpoint
    cfg_path = osp.join(run_dir, 'configs', 'semples.py')
    cfg = Config.fromfile(cfg_path)
    semples_dir = osp.join(run_dir, 'semples')
    last = final_checkpoint(semples_dir,
                            PhaseSchedule(cfg.model.phases).total_iters)
    if last is None:
        raise FileNotFoundError(f'{semples_dir}: no final checkpoint; is the '
                                'run finished?')
    files = dict(config=cfg_path, checkpoint=last)
    for phase in ('cam', 'match'):
        path = osp.join(semples_dir, f'cam_network_after_{phase}.pth')
        if not osp.isfile(path):
            raise FileNotFoundError(path)
        files[phase] = path
    return cfg, files


def initial_checkpoint(files, phases, path):
    """Write the model state the rerun starts from (see the module
    docstring) and return its path."""
    from semples_mm.utils.checkpoints import read_state_dict
    state = dict(read_state_dict(files['checkpoint']))
    after_cam = read_state_dict(files['cam'])
    start = after_cam if phases[0] == 'refine' else \
        read_state_dict(files['match'])
    for key in [k for k in state if k.startswith(CAM_PREFIXES + (
            'cam_snapshot.', '_extra_state'))]:
        del state[key]
    state.update(start)
    # A run without a cam phase starts refine from the snapshot it holds,
    # else from the weights it starts with (see SemPLeS.enter_iteration).
    if phases[0] == 'prompt':
        # as at the end of match: refine will restore the end of cam
        state.update({'cam_snapshot.' + key.replace('.', '/'): value
                      for key, value in after_cam.items()})
        for key in [k for k in state if k.startswith('prompt_learner.')]:
            del state[key]  # the model's fresh prompts stay
    torch.save(dict(state_dict=state, meta=dict(
        source=files, phases=list(phases))), path)
    return path


def rerun_config(cfg, files, args, work_dir):
    """The run's config with only the rerun phases (see the module
    docstring)."""
    cfg = copy.deepcopy(cfg)
    old = {p['name']: p for p in cfg.model.phases}
    lengths = dict(prompt=args.prompt_iters, refine=args.refine_iters)
    phases = []
    for name in args.phases:
        phase = dict(old[name])
        if lengths[name] is not None:
            phase['iters'] = lengths[name]
        phases.append(phase)
    cfg.model.phases = phases
    max_iters = sum(p['iters'] for p in phases)
    # no validation: the export scores the end of refine
    train_cfg = {k: v for k, v in cfg.train_cfg.items()
                 if k not in ('max_iters', 'val_interval')}
    cfg.train_cfg = dict(train_cfg, validate_after=[],
                         val_begin=max_iters + 1)
    hooks = []
    for hook in cfg.custom_hooks:
        hook = dict(hook)
        if hook['type'] == 'SemPLeSPhaseHook':  # runs before it was gone
            hook['type'] = 'PhaseLogHook'
            hook.pop('validate_after', None)
        if hook['type'] == 'PhaseCheckpointHook':
            hook['phases'] = ['refine']
        hooks.append(hook)
    cfg.custom_hooks = hooks
    if args.refine_weight is not None:
        cfg.model.refine_loss = dict(cfg.model.refine_loss,
                                     loss_weight=args.refine_weight)
    if args.prompt_length is not None:
        if 'prompt' not in args.phases:
            raise ValueError('--prompt-length needs --phases prompt refine')
        cfg.model.prompt_learner = dict(cfg.model.prompt_learner,
                                        length=args.prompt_length)
    if args.seed is not None:
        cfg.randomness = dict(cfg.get('randomness') or {}, seed=args.seed)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.load_from = initial_checkpoint(files, args.phases,
                                       osp.join(work_dir, 'initial.pth'))
    cfg.resume = False
    cfg.work_dir = work_dir
    return cfg


def main(argv=None):
    args = parse_args(argv)
    if args.num_threads is not None:
        torch.set_num_threads(args.num_threads)
    if list(args.phases) not in (['refine'], ['prompt', 'refine']):
        raise ValueError('--phases: refine, or prompt refine')
    import semples_mm  # noqa: F401  (registers)
    from semples_mm.apis import make_pseudo_labels, train
    from semples_experiments.runner.derived_configs import export_dataloader
    from semples_mm.pseudo_labels import pseudo_mask_metric

    work_dir = osp.abspath(args.work_dir)
    if osp.exists(osp.join(work_dir, 'result.json')):
        raise FileExistsError(f'{work_dir} holds a finished rerun; choose '
                              'another --work-dir')
    os.makedirs(work_dir, exist_ok=True)
    run_cfg, files = run_files(args.run_dir)
    cfg = rerun_config(run_cfg, files, args, work_dir)
    cfg_path = osp.join(work_dir, 'semples.py')
    cfg.dump(cfg_path)
    start = time.perf_counter()
    train(cfg_path, work_dir=work_dir)
    train_s = time.perf_counter() - start
    checkpoint = osp.join(work_dir, 'cam_network_after_refine.pth')
    loader = export_dataloader(cfg)
    summary = make_pseudo_labels(
        cfg_path, checkpoint, osp.join(work_dir, 'pseudo_masks'),
        split=loader['dataset']['ann_file'], label='semples',
        work_dir=work_dir, dataloader_cfg=loader,
        metric=pseudo_mask_metric(cfg), evaluate=True, overwrite=True,
        progress=False)
    metrics = summary['metrics']
    result = dict(
        run_dir=osp.abspath(args.run_dir), phases=list(args.phases),
        refine_weight=cfg.model.refine_loss['loss_weight'],
        prompt_length=cfg.model.prompt_learner.get('length'),
        iters={p['name']: p['iters'] for p in cfg.model.phases},
        seed=cfg.randomness.get('seed'), mIoU=summary['mIoU'],
        best_threshold=summary['best_threshold'],
        IoU_per_class=metrics['pseudo/IoU_per_class'],
        best_at_sweep_edge=metrics['pseudo/best_at_sweep_edge'],
        train_s=round(train_s, 1), export_s=summary.get('seconds'))
    with open(osp.join(work_dir, 'result.json'), 'w') as file:
        json.dump(result, file, indent=1)
    print(json.dumps(result))
    return result


if __name__ == '__main__':
    main()
