"""tools/analysis_tools/draw_phase_overlays.py on the tiny world: its
panels show the image, and the masks it draws are those the export writes
from the same phase-end checkpoint."""
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from PIL import Image

from conftest import (TEST_CONFIGS, TINY_WORLD, changed_pixel_fraction,
                      load_tool, make_tiny_world, read_masks)
from semples_mm.apis import make_pseudo_labels

SIZE = TINY_WORLD['image_size']


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    """A run folder as the experiment runner leaves it, with two phase-end
    CAM networks of other random weights."""
    root = tmp_path_factory.mktemp('run')
    world = make_tiny_world(root / 'world')
    cfg = Config.fromfile(str(TEST_CONFIGS / 'tiny_semples.py'))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = str(world)
    # a threshold inside the random CAMs' range, so masks have both kinds
    cfg.model.test_cfg = dict(scales=(1.0, ), flip=False, bg_threshold=0.5)
    (root / 'configs').mkdir()
    cfg.dump(str(root / 'configs' / 'semples.py'))
    init_default_scope('mmseg')
    (root / 'semples').mkdir()
    for seed, phase in enumerate(('cam', 'match')):
        torch.manual_seed(seed)
        torch.save({'state_dict': MODELS.build(cfg.model).state_dict()},
                   root / 'semples' / f'cam_network_after_{phase}.pth')
    return root


@pytest.mark.float_compare
def test_overlays_show_the_exported_masks(run_dir, tmp_path):
    tool = load_tool('analysis_tools/draw_phase_overlays')
    out = tmp_path / 'figure.png'
    tool.main([str(run_dir), str(out), '--phases', 'cam', 'match',
               '--num-images', '3', '--scale', '2'])
    # 3 rows; image, ground truth, then CAM and mask per phase: 6 columns
    assert Image.open(out).size == (6 * SIZE * 2, 3 * SIZE * 2)

    grid = tool.draw_overlays(str(run_dir), ('cam', 'match'), num_images=3)
    panels = grid.reshape(3, SIZE, 6, SIZE, 3).transpose(0, 2, 1, 3, 4)
    image_ids = (run_dir / 'world' / 'ImageSets' / 'Segmentation' /
                 'train.txt').read_text().split()[:3]
    for row, image_id in enumerate(image_ids):
        image = np.array(Image.open(
            run_dir / 'world' / 'JPEGImages' / f'{image_id}.png'))
        np.testing.assert_array_equal(panels[row, 0], image)
    for phase, column in (('cam', 3), ('match', 5)):
        out_dir = tmp_path / phase
        make_pseudo_labels(str(run_dir / 'configs' / 'semples.py'),
                           str(run_dir / 'semples' /
                               f'cam_network_after_{phase}.pth'),
                           str(out_dir), work_dir=str(tmp_path / 'work'),
                           progress=False)
        exported = read_masks(out_dir)
        drawn = {}
        for row, image_id in enumerate(image_ids):
            image = np.array(Image.open(
                run_dir / 'world' / 'JPEGImages' / f'{image_id}.png'))
            # a drawn pixel is coloured exactly where its mask is not
            # background (untouched pixels equal the image)
            drawn[f'{image_id}.png'] = (
                panels[row, column] != image).any(-1).astype(np.uint8)
        foreground = {name: (exported[name] > 0).astype(np.uint8)
                      for name in drawn}
        assert any(mask.any() and not mask.all()
                   for mask in foreground.values())
        # the export batches its images, the tool runs them one by one:
        # kernels may round differently and flip a pixel tied with the
        # threshold (the tests' 0.1% budget for other batchings)
        assert changed_pixel_fraction(drawn, foreground) <= 1e-3
    # the two phases' weights give other CAM panels
    assert (panels[:, 2] != panels[:, 4]).any()


def test_missing_phase_checkpoint_is_named(run_dir, tmp_path):
    tool = load_tool('analysis_tools/draw_phase_overlays')
    with pytest.raises(FileNotFoundError,
                       match='cam_network_after_refine.pth'):
        tool.main([str(run_dir), str(tmp_path / 'x.png')])
    with pytest.raises(FileNotFoundError, match='configs/semples.py'):
        tool.main([str(tmp_path), str(tmp_path / 'x.png')])
    with pytest.raises(SystemExit):
        tool.main([str(run_dir), str(tmp_path / 'x.png'),
                   '--num-images', '0'])


def test_val_threshold_is_the_one_each_export_recorded(tmp_path):
    """With bg_threshold='val' each phase's masks were written at the
    threshold its export chose; the overlays draw at that one."""
    from semples_mm.pseudo_labels.manifest import write_manifest
    tool = load_tool('analysis_tools/draw_phase_overlays')
    assert tool.mask_threshold(str(tmp_path), 'match',
                               dict(bg_threshold=0.45)) == 0.45
    folder = tmp_path / 'pseudo_masks' / 'semples'  # refine's export label
    folder.mkdir(parents=True)
    write_manifest(str(folder), dict(settings=dict(bg_threshold=0.37)))
    assert tool.mask_threshold(str(tmp_path), 'refine',
                               dict(bg_threshold='val')) == 0.37
    with pytest.raises(FileNotFoundError, match="'match'"):
        tool.mask_threshold(str(tmp_path), 'match', dict(bg_threshold='val'))
