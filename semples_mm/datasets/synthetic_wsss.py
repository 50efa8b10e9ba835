"""The synthetic world as a dataset: a VOC-layout dataset that checks the
world it reads was made with its settings."""
import json
import os.path as osp
from typing import Optional

from mmseg.registry import DATASETS

from .synthetic import SYNTHETIC_CLASSES
from .synthetic.world import world_mismatch
from .voc_layout import VOCLayoutWSSSDataset, palette_for

#: The settings that make a world (``world.json`` records them).
WORLD_KEYS = ('seed', 'num_train', 'num_val', 'image_size', 'context_prob')


@DATASETS.register_module()
class SyntheticWSSSDataset(VOCLayoutWSSSDataset):
    """:class:`VOCLayoutWSSSDataset` on the embedded synthetic world.

    ``data_root`` must hold the world of ``synthetic_world`` (the settings
    of :func:`generate_synthetic_world`: ``seed``, ``num_train``,
    ``num_val``, ``image_size``, ``context_prob``); ``tools/train.py`` and
    ``tools/run_experiment.py`` generate it before training, and
    ``tools/misc/generate_synthetic_world.py`` does alone. A missing world,
    or one made with other settings, fails naming what to do.

    Args:
        synthetic_world (dict): the world's settings.
        data_root (str): the folder of the world.
        **kwargs: see :class:`VOCLayoutWSSSDataset`.
    """
    METAINFO = dict(classes=('background', ) + tuple(SYNTHETIC_CLASSES),
                    palette=palette_for(len(SYNTHETIC_CLASSES) + 1))

    def __init__(self, synthetic_world: dict, data_root: Optional[str] = None,
                 **kwargs):
        settings = {k: v for k, v in dict(synthetic_world).items()
                    if k in WORLD_KEYS}
        if data_root is None or not osp.isfile(
                osp.join(data_root, 'world.json')):
            raise FileNotFoundError(
                f'no synthetic world in data_root={data_root!r}: generate it '
                'with `python tools/misc/generate_synthetic_world.py '
                f'{data_root or "DATA_ROOT"} ' + ' '.join(
                    f'--{k.replace("_", "-")} {v}'
                    for k, v in settings.items()) + '` (tools/train.py and '
                'tools/run_experiment.py do it for a synthetic config).')
        diff = world_mismatch(data_root, **settings)
        if diff is not None:
            raise ValueError(
                f'{data_root} holds a synthetic world with other settings '
                f'than synthetic_world={settings}: {diff}. Delete the folder '
                'to regenerate it, or change data_root or synthetic_world.')
        with open(osp.join(data_root, 'world.json')) as f:
            world_classes = json.load(f)['classes']
        classes = (kwargs.get('metainfo') or {}).get(
            'classes', self.METAINFO['classes'])
        if list(classes[1:]) != list(world_classes):
            raise ValueError(
                f'metainfo classes {tuple(classes)} do not match the '
                f'synthetic world\'s classes {["background"] + world_classes}'
                f' in {data_root}/world.json')
        self.synthetic_world = dict(synthetic_world)
        super().__init__(data_root=data_root, **kwargs)
