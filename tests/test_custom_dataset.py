"""A new user's dataset and CLIP in one short config: a VOC-layout dataset
of other classes and a CLIP saved the way open_clip saves models, through
the whole pipeline (quick mode), from configs/semples/custom_dataset_example
.py with only its EDIT lines changed."""
import json
import re

import numpy as np
import open_clip
import torch
from PIL import Image
from safetensors.torch import save_file

from conftest import REPO_ROOT, load_tool

EXAMPLE = REPO_ROOT / 'configs' / 'semples' / 'custom_dataset_example.py'
CLASSES = ('background', 'square', 'disc', 'ring')
# A CLIP no registry knows, with room for 16 prompt vectors.
CLIP_CFG = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=32, layers=1, width=32, head_width=16,
                    patch_size=16),
    text_cfg=dict(context_length=32, vocab_size=49408, width=48, heads=2,
                  layers=1))


def write_dataset(root, num_train=12, num_val=6, size=72):
    """72x72 JPEGs with one or two shapes of the three classes, their
    class-id masks and the two image lists."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    for folder in ('JPEGImages', 'SegmentationClass',
                   'ImageSets/Segmentation'):
        (root / folder).mkdir(parents=True)
    ids = {'train': [], 'val': []}
    for split, count in (('train', num_train), ('val', num_val)):
        for index in range(count):
            image = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
            mask = np.zeros((size, size), np.uint8)
            for cls in rng.choice([1, 2, 3], rng.integers(1, 3),
                                  replace=False):
                cx, cy = rng.integers(16, size - 16, 2)
                radius = np.hypot(yy - cy, xx - cx)
                region = {1: (abs(yy - cy) < 10) & (abs(xx - cx) < 10),
                          2: radius < 10,
                          3: (radius < 11) & (radius > 6)}[int(cls)]
                mask[region] = cls
                image[region] = (60 * cls, 200, 255 - 60 * cls)
            img_id = f'{split}_{index:03d}'
            Image.fromarray(image).save(root / 'JPEGImages' / f'{img_id}.jpg')
            Image.fromarray(mask).save(root / 'SegmentationClass' /
                                       f'{img_id}.png')
            ids[split].append(img_id)
        (root / 'ImageSets' / 'Segmentation' / f'{split}.txt').write_text(
            '\n'.join(ids[split]))


def save_clip(folder):
    """A random CLIP saved as open_clip saves models (config + weights)."""
    from open_clip.constants import HF_CONFIG_NAME, HF_SAFE_WEIGHTS_NAME
    from open_clip.model import set_model_preprocess_cfg
    from open_clip.push_to_hf_hub import save_config_for_hf
    torch.manual_seed(0)
    model = open_clip.model.CLIP(**CLIP_CFG).eval()
    set_model_preprocess_cfg(model, dict(
        mean=(0.48, 0.46, 0.41), std=(0.27, 0.26, 0.28),
        interpolation='bicubic'))
    folder.mkdir(parents=True)
    save_config_for_hf(model, folder / HF_CONFIG_NAME, model_config=CLIP_CFG)
    save_file(model.state_dict(), str(folder / HF_SAFE_WEIGHTS_NAME))
    return folder


def user_config(tmp_path, data_root, clip_folder):
    """The example with its EDIT lines set, as a user writes it."""
    text = EXAMPLE.read_text()
    values = dict(data_root=repr(str(data_root)), classes=repr(CLASSES),
                  clip_model=repr(f'local-dir:{clip_folder}'))
    for name, value in values.items():
        text, count = re.subn(rf'^{name} = .*# EDIT.*$', f'{name} = {value}',
                              text, flags=re.M)
        assert count == 1, name
    text = text.replace("_base_ = ['./synthetic.py']",
                        f"_base_ = ['{EXAMPLE.parent / 'synthetic.py'}']")
    code = [line for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith('#')]
    assert len(code) <= 20, len(code)
    path = tmp_path / 'my_dataset.py'
    path.write_text(text)
    return path


def test_a_new_dataset_and_clip_run_through_the_pipeline(tmp_path):
    data_root = tmp_path / 'data'
    write_dataset(data_root)
    config = user_config(tmp_path, data_root,
                         save_clip(tmp_path / 'my_clip'))
    work_dir = tmp_path / 'run'
    summary = load_tool('run_experiment').main(
        [str(config), '--work-dir', str(work_dir), '--quick',
         '--num-threads', '1'])
    for label in ('cam', 'match', 'semples'):
        masks = summary['pseudo_masks'][label]
        assert masks['num_images'] == 12 and masks['split'] == 'train'
        assert 0 <= masks['mIoU'] <= 100
        assert masks['best_at_sweep_edge'] in (True, False)
    written = np.array(Image.open(next(
        (work_dir / 'pseudo_masks' / 'semples').glob('*.png'))))
    assert written.shape == (72, 72) and written.max() <= 3
    # DeepLabV2 took the data settings and the classes from the one config
    deeplab = summary['deeplabv2']
    assert deeplab['num_images'] == 6 and 0 <= deeplab['mIoU'] <= 100
    derived = (work_dir / 'configs' /
               'deeplabv2_tiny_synthetic_pseudo.py').read_text()
    assert str(data_root) in derived and "'ring'" in derived
    assert re.search(r"num_classes=4\b", derived)
    record = json.loads((work_dir / 'summary.json').read_text())
    assert record['steps'][
        'deeplabv2_tiny_synthetic_pseudo_test']['status'] == 'done'


def test_the_example_names_every_edit_line():
    text = EXAMPLE.read_text()
    assert [m.group(1) for m in re.finditer(
        r'^(\w+) = .*# EDIT', text, flags=re.M)] == [
        'data_root', 'classes', 'clip_model']
