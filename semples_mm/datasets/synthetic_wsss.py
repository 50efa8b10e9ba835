"""The synthetic world as a dataset: generated on first use, then read as
any VOC-layout dataset."""
import json
import os.path as osp
from typing import Optional

from mmengine.logging import print_log
from mmseg.registry import DATASETS

from .synthetic.world import generate_synthetic_world, world_mismatch
from .voc_wsss import PascalVOCWSSSDataset

#: The settings that make a world (``world.json`` records them).
WORLD_KEYS = ('seed', 'num_train', 'num_val', 'image_size', 'context_prob')


@DATASETS.register_module()
class SyntheticWSSSDataset(PascalVOCWSSSDataset):
    """:class:`PascalVOCWSSSDataset` on the embedded synthetic world.

    If ``data_root`` holds no ``world.json``, the world of
    ``synthetic_world`` (:func:`generate_synthetic_world`'s settings:
    ``seed``, ``num_train``, ``num_val``, ``image_size``, ``context_prob``,
    ``progress``) is generated there first; if it holds one with other
    settings, an error says what differs. Everything else is the VOC
    dataset's code path.

    Args:
        synthetic_world (dict): the world's settings.
        data_root (str): the folder of the world.
        **kwargs: see :class:`PascalVOCWSSSDataset`.
    """

    def __init__(self, synthetic_world: dict, data_root: Optional[str] = None,
                 **kwargs):
        if data_root is None:
            raise ValueError('SyntheticWSSSDataset needs data_root: the '
                             'folder to generate the world in')
        settings = dict(synthetic_world)
        if not osp.isfile(osp.join(data_root, 'world.json')):
            print_log(f'generating the synthetic world in {data_root} '
                      f'({settings})', logger='current')
            generate_synthetic_world(data_root, **settings)
        diff = world_mismatch(data_root, **{
            k: v for k, v in settings.items() if k in WORLD_KEYS})
        if diff is not None:
            raise ValueError(
                f'{data_root} holds a synthetic world with other settings '
                f'than synthetic_world={settings}: {diff}. Delete the folder '
                'to regenerate it, or change data_root or synthetic_world.')
        with open(osp.join(data_root, 'world.json')) as f:
            world_classes = json.load(f)['classes']
        classes = (kwargs.get('metainfo') or {}).get('classes')
        if classes is not None and list(classes[1:]) != list(world_classes):
            raise ValueError(
                f'metainfo classes {tuple(classes)} do not match the '
                f'synthetic world\'s classes {["background"] + world_classes}'
                f' in {data_root}/world.json')
        self.synthetic_world = settings
        super().__init__(data_root=data_root, **kwargs)
