"""Shared test fixtures: tiny data on disk and access to the tools/ scripts."""
import importlib.util
import os
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from mmengine.hooks import Hook
from mmseg.registry import HOOKS
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_CONFIGS = REPO_ROOT / 'tests' / 'data' / 'configs'
# tests/data/configs/tiny_semples.py's synthetic world
TINY_WORLD = dict(seed=0, num_train=64, num_val=16, image_size=32,
                  context_prob=0.85, progress=False)

# Keep the suite on the 2 cores CI has, and never reach for the network.
os.environ.setdefault('OMP_NUM_THREADS', '2')
os.environ.setdefault('HF_HUB_OFFLINE', '1')

# Rounding budgets (tests/float_compare.py) of tiny_semples.py's SemPLeS
# computed two ways (other batches of crops, per-pair or cached texts). A
# loss comes out of CLIP's image tower (patch embedding, 3 blocks of 6 sums,
# projection: 20 sums, the longest its MLP's 384 terms), the similarity and
# the mean over pairs. A gradient goes back through all of it, the mask
# upsampling and the CAM network's head (a ResNet's 64 x 3 x 3 = 576 inputs,
# a WeakTr head's 48 x 3 x 3), 2 * 22 + 4 sums.
TINY_LOSS_SUMS = dict(terms=384, depth=22)
TINY_GRAD_SUMS = dict(terms=576, depth=48)


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'float_compare: compares floats or masks the code '
        'computes; tools/misc/flake_hunt.py runs these under other thread '
        'counts and instruction sets')


def load_tool(name):
    """Import ``tools/<name>.py`` (``name`` may hold a sub-folder, e.g.
    'analysis_tools/rerun_phases') as a module (tools/ is not a package)."""
    path = REPO_ROOT / 'tools' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(
        'tools_' + name.replace('/', '_'), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@HOOKS.register_module(force=True)
class StopAfterIterHook(Hook):
    """Simulates a killed job: raises once iteration ``stop_iter`` is done
    (VERY_LOW: after the CheckpointHook has saved it)."""
    priority = 'VERY_LOW'

    def __init__(self, stop_iter):
        self.stop_iter = stop_iter

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.stop_iter:
            raise KeyboardInterrupt(f'stopped after iter {self.stop_iter}')


def make_tiny_world(root):
    """Generate tiny_semples.py's world in ``root`` (datasets read worlds,
    never make them) and return ``root``."""
    from semples_mm.datasets import generate_synthetic_world
    generate_synthetic_world(str(root), **TINY_WORLD)
    return root


def start_next_second():
    """Sleep into the next wall-clock second. mmengine names a run's log
    folder and file by the second it starts, so two runs started in the same
    second in one work_dir write (and truncate) the same log file."""
    time.sleep(1.05 - time.time() % 1)


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def read_masks(folder):
    """{file name: (H, W) id array} of the PNG masks in ``folder``."""
    return {name: np.array(Image.open(os.path.join(folder, name)))
            for name in sorted(os.listdir(folder)) if name.endswith('.png')}


def changed_pixel_fraction(masks_a, masks_b):
    """Fraction of pixels whose id differs between two :func:`read_masks`
    results that hold the same files. Exports computed in other batches,
    threads or precisions may round differently and flip a pixel whose
    score ties with the threshold, so they are compared this way rather
    than byte for byte."""
    assert masks_a.keys() == masks_b.keys()
    changed = sum(int((masks_a[k] != masks_b[k]).sum()) for k in masks_a)
    return changed / sum(m.size for m in masks_a.values())


@pytest.fixture(scope='session')
def tiny_seg_root(tmp_path_factory):
    """Eight 32x32 RGB images with a square (id 1) and a disc (id 2)."""
    root = tmp_path_factory.mktemp('tiny_seg')
    (root / 'images').mkdir()
    (root / 'masks').mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    for i in range(8):
        image = rng.integers(0, 60, (32, 32, 3), dtype=np.uint8)
        mask = np.zeros((32, 32), np.uint8)
        x0, y0 = rng.integers(0, 16, 2)
        mask[y0:y0 + 12, x0:x0 + 12] = 1
        cx, cy = rng.integers(8, 24, 2)
        mask[(yy - cy) ** 2 + (xx - cx) ** 2 < 25] = 2
        image[mask == 1] = (220, 40, 40)
        image[mask == 2] = (40, 40, 220)
        Image.fromarray(image).save(root / 'images' / f'{i:03d}.png')
        Image.fromarray(mask).save(root / 'masks' / f'{i:03d}.png')
    return root


@pytest.fixture
def python_env():
    """Environment for subprocesses: this repo importable, 1 thread each."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [str(REPO_ROOT), env.get('PYTHONPATH', '')])
    env['OMP_NUM_THREADS'] = '1'
    return env


@pytest.fixture
def python_exe():
    return sys.executable
