"""Configs the runner derives from the user's SemPLeS and segmentor configs.

The user's config files stay untouched: the runner loads them, applies
its settings (world seed and folder, the phase-end checkpoints its export
steps read, added to the config's own hooks, the masks a segmentor trains
on, a synthetic-world segmentor's data taken from the SemPLeS config,
``--quick`` sizes) and dumps the result into the work dir, where
``tools/train.py`` reads it like any other config.
"""
import copy
import os.path as osp

from mmengine.config import Config

from semples_mm.models.segmentors.phase_schedule import PhaseSchedule
from semples_mm.pseudo_labels.settings import export_settings
from semples_mm.utils.config_dicts import dicts_with_keys

LOADER_KEYS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
# (label in summary.json, phase at whose end the masks are written)
EXPORTS = (('cam', 'cam'), ('match', 'match'), ('semples', 'refine'))
# --quick: a tiny world and a few iterations, for tests and smoke runs.
QUICK_SETTINGS = dict(
    world=dict(num_train=16, num_val=8),
    phase_iters=dict(cam=4, match=3, prompt=3, refine=3),
    semples_batch_size=8,
    segmentor_iters=6,
    segmentor_batch_size=8,
)
# Dataset keys that name the training list and its masks; the export
# dataloader takes them from train_dataloader (val pipeline otherwise).
SPLIT_KEYS = ('data_root', 'ann_file', 'data_prefix', 'label_seg_map_path',
              'label_file', 'xml_dir', 'synthetic_world', 'img_suffix',
              'seg_map_suffix')


def _dataset(cfg, loader_key):
    loader = cfg.get(loader_key)
    if not isinstance(loader, dict) or not isinstance(
            loader.get('dataset'), dict):
        raise KeyError(f'{cfg.filename}: {loader_key}.dataset must be a '
                       'dataset config dict for the experiment runner')
    return loader['dataset']


def synthetic_world_of(cfg):
    """The ``synthetic_world`` settings of the config's train dataset, or
    None for a real dataset (VOC, COCO)."""
    world = _dataset(cfg, 'train_dataloader').get('synthetic_world')
    return None if world is None else dict(world)


def _set_world(cfg, data_root, seed, quick):
    """Point every dataloader with a synthetic world at ``data_root`` and
    ``seed``; returns the world settings (None for real datasets)."""
    world = None
    for key in LOADER_KEYS:
        if not isinstance(cfg.get(key), dict):
            continue
        dataset = _dataset(cfg, key)
        if dataset.get('synthetic_world') is None:
            continue
        world = dict(dataset['synthetic_world'])
        world['seed'] = seed
        if quick:
            world.update(QUICK_SETTINGS['world'])
        world['progress'] = False
        dataset['synthetic_world'] = world
        dataset['data_root'] = data_root
    return world


def _set_quick_loaders(cfg, batch_size):
    """Few images per batch and no worker processes (start-up dominates)."""
    for key in LOADER_KEYS:
        if isinstance(cfg.get(key), dict):
            cfg[key]['num_workers'] = 0
            cfg[key]['persistent_workers'] = False
    cfg.train_dataloader['batch_size'] = batch_size


def export_dataloader(cfg, ann_file=None):
    """Dataloader config for the pseudo-mask exports: the images (and masks)
    of the training list, read with the validation pipeline.

    Args:
        cfg (Config): the SemPLeS config.
        ann_file (str, optional): another image list (relative to
            data_root), e.g. VOC's 'ImageSets/Segmentation/train.txt' to
            score on the 1,464 images papers report.

    Returns:
        dict: mmengine dataloader config.
    """
    loader = copy.deepcopy(cfg.val_dataloader)
    dataset = loader['dataset']
    train_dataset = _dataset(cfg, 'train_dataloader')
    for key in SPLIT_KEYS:
        if key in train_dataset:
            dataset[key] = copy.deepcopy(train_dataset[key])
        else:
            dataset.pop(key, None)
    if ann_file is not None:
        dataset['ann_file'] = ann_file
    dataset['test_mode'] = True
    loader['sampler'] = dict(type='DefaultSampler', shuffle=False)
    loader.pop('persistent_workers', None)
    return loader


def split_name(ann_file):
    """'ImageSets/Segmentation/train.txt' -> 'train'."""
    return osp.splitext(osp.basename(ann_file))[0]


def derive_semples_config(config, seed, data_root=None, quick=False):
    """The SemPLeS config the runner trains.

    Args:
        config (str): SemPLeS config file (e.g. configs/semples/synthetic.py).
        seed (int): training seed, and the world seed of a synthetic world.
        data_root (str, optional): folder of the synthetic world; required
            when the config has one, ignored otherwise.
        quick (bool): QUICK_SETTINGS sizes.

    Returns:
        tuple(Config, dict | None): the config, the world settings.
    """
    cfg = Config.fromfile(config)
    world = None
    if synthetic_world_of(cfg) is not None:
        if data_root is None:
            raise ValueError(f'{config} has a synthetic world: the runner '
                             'needs a data_root to generate it in')
        world = _set_world(cfg, osp.abspath(data_root), seed, quick)
    cfg.randomness = dict(cfg.get('randomness') or {}, seed=seed)

    names = PhaseSchedule(cfg.model.get('phases') or []).names
    missing = [p for _, p in EXPORTS if p not in names]
    if missing:
        raise ValueError(f'{config}: model.phases {list(names)} lack '
                         f'{missing}; the runner exports pseudo masks at '
                         'the end of cam, match and refine')
    if quick:
        for phase in cfg.model.phases:
            phase['iters'] = QUICK_SETTINGS['phase_iters'].get(
                phase['name'], 3)
        _set_quick_loaders(cfg, QUICK_SETTINGS['semples_batch_size'])
        cfg.default_hooks.logger['interval'] = 1
    total = PhaseSchedule(cfg.model.phases).total_iters
    # checkpoints at least at the end (and on the way for long runs), so
    # that a killed run resumes and the runner sees the final one
    checkpoint = cfg.default_hooks.get('checkpoint')
    if checkpoint is None:
        raise KeyError(f'{config}: default_hooks.checkpoint is needed to '
                       'resume and to find the final checkpoint')
    checkpoint.update(by_epoch=False, save_last=True)
    if quick:  # the config's interval, unless it is longer than the run
        checkpoint['interval'] = min(checkpoint.get('interval', total), total)

    # The runner exports from the CAM network of each phase end, each export
    # a step of its own that a rerun continues with the same weights: it
    # adds the phases it exports to the config's PhaseCheckpointHook (or
    # adds one). The user's hooks stay as they are (a PseudoLabelHook
    # writes into the folder of the runner's export of the same weights,
    # which then finds its masks written).
    hooks = list(cfg.get('custom_hooks', []))
    saving = [h for h in hooks if h.get('type') == 'PhaseCheckpointHook']
    if not saving:
        saving = [dict(type='PhaseCheckpointHook', phases=[])]
        hooks.append(saving[0])
    saving[0]['phases'] = list(dict.fromkeys(
        [*saving[0].get('phases', []), *(phase for _, phase in EXPORTS)]))
    cfg.custom_hooks = hooks
    # the exports' settings are checked now: a typo must not wait until
    # the training is done
    export_settings(cfg)
    return cfg, world


# Dataset keys a segmentor config derived from a SemPLeS config takes from
# it: where the images, the labels and the ground truth are.
DATA_KEYS = ('type', 'data_root', 'ann_file', 'data_prefix', 'img_suffix',
             'seg_map_suffix', 'metainfo', 'label_file', 'label_seg_map_path',
             'xml_dir', 'synthetic_world', 'instances_file')


def follows_semples_data(cfg) -> bool:
    """Whether a segmentor config takes its data from the SemPLeS config.

    The rule: a segmentor config on the synthetic world (its train dataset
    has ``synthetic_world``, as the tiny DeepLabV2 and SegFormer configs)
    names no data of its own: the pseudo masks are of the SemPLeS config's
    training images, so it takes that config's data (dataset type, folders,
    lists, classes, world and seed), whatever the dataset. A config on a
    real dataset (VOC, COCO, one of the user's) is used as it is, except
    for the masks it trains on.
    """
    return synthetic_world_of(cfg) is not None


def _dataset_classes(dataset_cfg):
    """The class list (background first) a dataset config gives."""
    classes = (dataset_cfg.get('metainfo') or {}).get('classes')
    if classes is None:
        from mmseg.registry import DATASETS
        classes = DATASETS.get(dataset_cfg['type']).METAINFO['classes']
    return tuple(classes)


def _heads(model):
    """The decode head and the auxiliary head(s) of a segmentor config."""
    heads = [model.get('decode_head')]
    auxiliary = model.get('auxiliary_head')
    heads += auxiliary if isinstance(auxiliary, list) else [auxiliary]
    return [head for head in heads if isinstance(head, dict)]


def _take_data_settings(cfg, semples_cfg):
    """Point the segmentor config's datasets at the SemPLeS config's data:
    its training list (trained on pseudo masks) and its test list (the
    benchmark, as mmseg configs name it: VOC val for voc.py, whose
    val_dataloader is VOC train), with the segmentor's pipelines, and
    heads of its classes."""
    for key, source in (('train_dataloader', 'train_dataloader'),
                        ('val_dataloader', 'test_dataloader'),
                        ('test_dataloader', 'test_dataloader')):
        dataset = _dataset(cfg, key)
        semples_dataset = _dataset(semples_cfg, source)
        for name in DATA_KEYS:
            dataset.pop(name, None)
            if name in semples_dataset:
                dataset[name] = copy.deepcopy(semples_dataset[name])
    classes = _dataset_classes(_dataset(semples_cfg, 'train_dataloader'))
    for head in _heads(cfg.model):
        head['num_classes'] = len(classes)


def ground_truth_dir(cfg, config):
    """The training list's ground-truth masks: the folder its image labels
    are read from (``label_seg_map_path``; relative to ``data_root``)."""
    folder = _dataset(cfg, 'train_dataloader').get('label_seg_map_path')
    if not folder:
        raise KeyError(
            f'{config}: train_dataloader.dataset.label_seg_map_path is not '
            'set; training on the ground truth needs it: set it to the '
            "folder of the training list's ground-truth masks")
    return folder


def derive_segmentor_config(config, seed, mask_dir, data_root=None,
                            quick=False, semples_cfg=None):
    """A segmentor config (any mmseg one) trained on the masks in
    ``mask_dir``, or on the ground truth.

    Training on those masks (``seg_map_path``); image labels and the
    validation masks stay the ground truth. The end-of-training validation
    is switched off: the runner evaluates the final checkpoint itself.

    Args:
        config (str): mmseg segmentor config file.
        seed (int): training seed, and the world seed of a synthetic world.
        mask_dir (str | None): folder of the masks to train on (the pseudo
            masks); None: the training list's ground truth (the fully
            supervised upper bound), see :func:`ground_truth_dir`.
        data_root (str, optional): folder of the synthetic world SemPLeS
            trained on; required when the config has one.
        quick (bool): QUICK_SETTINGS sizes.
        semples_cfg (Config, optional): the SemPLeS config: a segmentor
            config on the synthetic world takes its data settings (dataset
            type, root, lists, folders, classes) from it, so one config
            describes a dataset (:func:`follows_semples_data`); None keeps
            the segmentor config's own.

    Returns:
        Config
    """
    cfg = Config.fromfile(config)
    if semples_cfg is not None and follows_semples_data(cfg):
        _take_data_settings(cfg, semples_cfg)
    if synthetic_world_of(cfg) is not None:
        if data_root is None:
            raise ValueError(f'{config} has a synthetic world: the runner '
                             'needs the data_root SemPLeS trained on')
        _set_world(cfg, osp.abspath(data_root), seed, quick)
    cfg.randomness = dict(cfg.get('randomness') or {}, seed=seed)
    dataset = _dataset(cfg, 'train_dataloader')
    dataset.setdefault('data_prefix', {})['seg_map_path'] = \
        ground_truth_dir(cfg, config) if mask_dir is None else \
        osp.abspath(mask_dir)
    if quick:
        iters = QUICK_SETTINGS['segmentor_iters']
        cfg.train_cfg['max_iters'] = iters
        for scheduler in cfg.get('param_scheduler') or []:
            if scheduler.get('end', 0) > iters:
                scheduler['end'] = iters
        _set_quick_loaders(cfg, QUICK_SETTINGS['segmentor_batch_size'])
        cfg.default_hooks.logger['interval'] = 1
    max_iters = cfg.train_cfg['max_iters']
    cfg.train_cfg['val_begin'] = max_iters + 1
    checkpoint = cfg.default_hooks.get('checkpoint')
    if checkpoint is None:
        raise KeyError(f'{config}: default_hooks.checkpoint is needed to '
                       'resume and to find the final checkpoint')
    checkpoint.update(by_epoch=False, save_last=True)
    checkpoint.pop('save_best', None)  # no validation while training
    if quick:
        checkpoint['interval'] = min(checkpoint.get('interval', max_iters),
                                     max_iters)
    return cfg


#: Dataset keys that name a file or folder the dataset reads (relative to
#: its data_root), besides the folders of ``data_prefix``.
DATA_PATH_KEYS = ('ann_file', 'label_file', 'label_seg_map_path', 'xml_dir',
                  'instances_file')


def data_paths(cfg, exclude=()) -> list:
    """The files and folders that the dataset configs anywhere in ``cfg``
    (dataloaders, phase dataloaders, a feature bank's) read: images, masks,
    labels, image lists; absolute, without those in ``exclude`` (e.g. the
    pseudo masks, whose digest is an input of its own).

    Args:
        cfg (dict): a config or a part of one.
        exclude (Iterable[str]): paths to leave out.
    """
    excluded = {osp.abspath(path) for path in exclude}
    paths = set()
    for dataset in dicts_with_keys(dict(cfg), ('data_prefix', 'ann_file')):
        root = dataset.get('data_root') or ''
        values = list((dataset.get('data_prefix') or {}).values()) + [
            dataset.get(key) for key in DATA_PATH_KEYS]
        paths.update(osp.abspath(osp.join(root, value)) for value in values
                     if isinstance(value, str) and value)
    return sorted(paths - excluded)
