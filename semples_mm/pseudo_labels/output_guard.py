"""Refusal to write pseudo masks over ground-truth annotations."""
import os.path as osp

from ..utils.config_dicts import dicts_with_keys

#: Folder names that hold VOC ground truth; pseudo masks never go there.
ANNOTATION_FOLDER_NAMES = ('SegmentationClass', 'SegmentationClassAug',
                           'SegmentationObject')


def _dataset_data_infos(dataset):
    """The data info dicts of an mmengine BaseDataset (empty otherwise)."""
    if not hasattr(dataset, 'get_data_info') or not hasattr(dataset,
                                                            '__len__'):
        return []
    if hasattr(dataset, 'full_init'):
        dataset.full_init()
    return [dataset.get_data_info(index) for index in range(len(dataset))]


def dataset_annotation_dirs(dataset):
    """Folders that hold the dataset's own masks.

    Args:
        dataset: an mmengine ``BaseDataset`` (``data_prefix['seg_map_path']``
            and per-sample ``seg_map_path``) or anything else (no folders).

    Returns:
        set[str]: absolute, real paths.
    """
    folders = set()
    seg_prefix = (getattr(dataset, 'data_prefix', None) or {}).get(
        'seg_map_path')
    if seg_prefix:
        folders.add(osp.realpath(seg_prefix))
    for info in _dataset_data_infos(dataset):
        if info.get('seg_map_path'):
            folders.add(osp.realpath(osp.dirname(info['seg_map_path'])))
    return folders


def dataset_has_masks(dataset):
    """Whether every sample of the dataset has a mask file on disk."""
    infos = _dataset_data_infos(dataset)
    return bool(infos) and all(
        info.get('seg_map_path') and osp.isfile(info['seg_map_path'])
        for info in infos)


def check_output_dir(out_dir, protected_dirs=()):
    """Raise if ``out_dir`` is, or lies inside, a ground-truth folder.

    Args:
        out_dir (str): where pseudo masks would be written.
        protected_dirs (Iterable[str]): further folders to refuse, e.g. from
            :func:`dataset_annotation_dirs`.
    """
    real_out = osp.realpath(out_dir)
    parts = real_out.split(osp.sep)
    for name in ANNOTATION_FOLDER_NAMES:
        if name in parts:
            raise ValueError(
                f'Refusing to write pseudo masks to {out_dir!r}: the folder '
                f'name {name!r} holds ground-truth annotations in the VOC '
                'layout, and writing there would overwrite them. Pass an '
                'output folder of its own, e.g. work_dirs/<exp>/pseudo_masks.')
    for protected in protected_dirs:
        real_protected = osp.realpath(protected)
        if real_out == real_protected or real_out.startswith(
                real_protected + osp.sep):
            raise ValueError(
                f'Refusing to write pseudo masks to {out_dir!r}: it is the '
                f"dataset's own annotation folder ({protected}, its "
                "seg_map_path), and writing there would overwrite the ground "
                'truth. Pass an output folder of its own, e.g. '
                'work_dirs/<exp>/pseudo_masks.')


def config_annotation_dirs(cfg) -> set:
    """Folders that any dataset config anywhere in ``cfg`` (dataloaders,
    phase dataloaders, a model's feature bank, hooks) reads masks or labels
    from: its data_root joined with ``data_prefix.seg_map_path`` and
    ``label_seg_map_path``. Exports refuse to write there.

    Returns:
        set[str]: absolute, real paths.
    """
    folders = set()
    for dataset in dicts_with_keys(dict(cfg),
                                   ('data_prefix', 'label_seg_map_path')):
        root = dataset.get('data_root') or ''
        for folder in ((dataset.get('data_prefix') or {}).get('seg_map_path'),
                       dataset.get('label_seg_map_path')):
            if folder:
                folders.add(osp.realpath(osp.join(root, folder)))
    return folders
