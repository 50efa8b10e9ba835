"""Dataloader configs for one in-order pass over a split."""
import copy


def in_order_loader_cfg(dataloader_cfg, ann_file=None, batch_size=None,
                        num_workers=None):
    """A copy of an mmengine dataloader config for one export pass.

    Its sampler becomes ``DefaultSampler(shuffle=False)`` (every image once,
    in list order; under torch.distributed each rank gets its own shard) and
    ``persistent_workers`` is dropped (one pass: no workers to keep).

    Args:
        dataloader_cfg (dict): e.g. the config's ``val_dataloader``.
        ann_file (str, optional): replaces ``dataset.ann_file``.
        batch_size (int, optional): replaces ``batch_size``.
        num_workers (int, optional): replaces ``num_workers``.

    Returns:
        dict: the new config; ``dataloader_cfg`` is not changed.
    """
    cfg = copy.deepcopy(dict(dataloader_cfg))
    if ann_file is not None:
        cfg['dataset'] = dict(cfg['dataset'], ann_file=ann_file)
    for key, value in (('batch_size', batch_size),
                       ('num_workers', num_workers)):
        if value is not None:
            cfg[key] = value
    cfg['sampler'] = dict(type='DefaultSampler', shuffle=False)
    cfg.pop('persistent_workers', None)
    return cfg
