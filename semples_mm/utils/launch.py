"""Start-up helpers shared by ``tools/train.py``, ``tools/test.py``,
``tools/make_pseudo_labels.py`` and the experiment runner."""
import os
import os.path as osp
import re
import shutil
import subprocess
from typing import Optional

import torch
import torch.distributed as torch_dist


def is_rank_zero() -> bool:
    """Whether this process is rank 0 (or alone), also before a process
    group exists (torchrun sets RANK, srun SLURM_PROCID)."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        return torch_dist.get_rank() == 0
    return int(os.environ.get('RANK',
                              os.environ.get('SLURM_PROCID', '0'))) == 0


def first_slurm_host(node_list: str) -> str:
    """The first host of a Slurm node list (``SLURM_NODELIST``), e.g.
    'gpu[07-09,12],cpu1' -> 'gpu07'; ``scontrol`` decides where it exists."""
    if shutil.which('scontrol'):
        hosts = subprocess.run(['scontrol', 'show', 'hostnames', node_list],
                               capture_output=True, text=True).stdout
        if hosts.split():
            return hosts.split()[0]
    match = re.match(r'([^,\[]+)(?:\[([^\]]+)\])?', node_list)
    if match is None:
        raise ValueError(f'cannot read the Slurm node list {node_list!r}')
    prefix, ranges = match.groups()
    return prefix + (re.split('[-,]', ranges)[0] if ranges else '')


def slurm_environment(environ=os.environ) -> dict:
    """torch.distributed's environment (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR, MASTER_PORT) from the variables srun sets, as mmengine's
    slurm launcher derives it (MASTER_PORT kept if set, else 29500)."""
    missing = [key for key in ('SLURM_PROCID', 'SLURM_NTASKS',
                               'SLURM_NODELIST') if key not in environ]
    if missing:
        raise RuntimeError(
            f'--launcher slurm needs the environment variables {missing}, '
            'which srun sets; start the script with tools/slurm_train.sh '
            '(or srun)')
    return dict(RANK=environ['SLURM_PROCID'],
                WORLD_SIZE=environ['SLURM_NTASKS'],
                LOCAL_RANK=environ.get('SLURM_LOCALID', '0'),
                MASTER_ADDR=first_slurm_host(environ['SLURM_NODELIST']),
                MASTER_PORT=environ.get('MASTER_PORT', '29500'))


def start_process_group(launcher):
    """Start torch.distributed for ``--launcher pytorch`` or ``slurm``
    outside mmengine's Runner: nccl through mmengine on GPUs, gloo on
    CPU-only machines. Nothing happens for ``'none'`` or when a group
    already exists."""
    if launcher == 'none' or torch_dist.is_initialized():
        return
    if torch.cuda.is_available():
        from mmengine.dist import init_dist
        init_dist(launcher, backend='nccl')
        return
    if launcher == 'slurm':
        os.environ.update(slurm_environment())
    elif launcher != 'pytorch':
        raise ValueError(
            f"launcher '{launcher}' needs GPUs; on CPU use --launcher pytorch "
            '(torchrun / tools/dist_train.sh), slurm (tools/slurm_train.sh) '
            'or none')
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if key not in os.environ:
            raise RuntimeError(
                f'--launcher pytorch needs the environment variable {key}; '
                'start the script with torchrun or tools/dist_train.sh')
    torch_dist.init_process_group(backend='gloo')


def init_cpu_distributed(cfg, launcher):
    """Make ``launcher='pytorch'`` and ``'slurm'`` work on machines
    without CUDA.

    mmengine's launchers call ``torch.cuda.set_device`` and its DDP wrappers
    pass ``device_ids``; both fail on CPU. When CUDA is missing we
    initialise a gloo process group ourselves (the Runner then skips its own
    init) and let the wrapper run without ``device_ids``. On GPUs nothing
    changes. Returns the config, modified in place.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return cfg
    start_process_group(launcher)
    cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    return cfg


def set_work_dir(cfg, work_dir, config_path):
    """``--work-dir`` wins, then the config's ``work_dir``, then
    ``./work_dirs/<config name>`` (mmseg's convention)."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])
    return cfg


def enable_tta(cfg, config_path):
    """Test with the config's ``tta_model`` and ``tta_pipeline``
    (multi-scale + flip), as mmseg's ``tools/test.py --tta`` (in place).

    Raises:
        KeyError: naming the config file, if either key is missing.
    """
    if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise KeyError(
            f'{config_path}: --tta needs `tta_model` and `tta_pipeline` '
            'in the config (see configs/deeplabv2/ for an example)')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model
    return cfg


def enable_amp(cfg, cuda: Optional[bool] = None) -> str:
    """Switch every optimizer wrapper of the config to mixed precision.

    On a GPU, mmengine's ``AmpOptimWrapper`` (fp16 autocast, dynamic loss
    scaling), as mmsegmentation's ``--amp``; on a CPU, which that wrapper
    refuses, :class:`BF16OptimWrapper` (bf16 autocast). Handles both a
    single wrapper (``optim_wrapper.type``) and the multi-optimizer form
    (``optim_wrapper=dict(cam=dict(...), prompt=...)``).

    Args:
        cfg (Config): changed in place.
        cuda (bool, optional): whether training runs on CUDA; None asks
            ``torch.cuda.is_available()``.

    Returns:
        str: the wrapper type chosen.
    """
    if cuda is None:
        cuda = torch.cuda.is_available()
    amp_type = 'AmpOptimWrapper' if cuda else 'BF16OptimWrapper'
    optim_wrapper = cfg.optim_wrapper
    if 'optimizer' in optim_wrapper or 'type' in optim_wrapper:
        wrappers = [optim_wrapper]
    else:
        wrappers = [v for k, v in optim_wrapper.items()
                    if k != 'constructor' and isinstance(v, dict)]
    for wrapper in wrappers:
        if wrapper.get('type', 'OptimWrapper') == amp_type:
            continue
        if wrapper.get('type', 'OptimWrapper') != 'OptimWrapper':
            raise ValueError(
                f"--amp needs 'OptimWrapper' in optim_wrapper, "
                f"got {wrapper['type']!r}")
        wrapper['type'] = amp_type
        if cuda:
            wrapper.setdefault('loss_scale', 'dynamic')
    return amp_type


def finish_distributed():
    """Tear the process group down before the interpreter exits.

    Left to interpreter shutdown, gloo's background threads can outlive the
    group and abort the process ('terminate called without an active
    exception'), turning a finished run into a failed one.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
