"""A reader of WeakTr-layout CAM files, written from WeakTr's
``evaluation.py`` (``do_python_eval`` with ``input_type='npy'``; the same
file in kuongan/SemPLeS): load the dict, stack the maps in key order, put a
constant ``threshold`` background map in front, softmax, argmax, map the
index back to ``key + 1`` (0 for background)."""
import glob
import os.path as osp

import numpy as np
import torch
import torch.nn.functional as F


def weaktr_scores(path, threshold):
    """The (P + 1, H, W) scores their evaluation takes the argmax of, and
    the class id of each channel."""
    cams = np.load(path, allow_pickle=True).item()
    maps = np.array([cams[key] for key in cams.keys()])
    label_key = np.array([key + 1 for key in cams.keys()]).astype(np.uint8)
    maps = np.pad(maps, ((1, 0), (0, 0), (0, 0)), mode='constant',
                  constant_values=threshold)
    label_key = np.pad(label_key, (1, 0), mode='constant',
                       constant_values=0)
    return F.softmax(torch.tensor(maps).float(), dim=0).numpy(), label_key


def weaktr_masks(cams_dir, threshold):
    """``{img_id: (H, W) uint8 class ids}`` of every ``<img_id>.npy``."""
    masks = {}
    for path in sorted(glob.glob(osp.join(cams_dir, '*.npy'))):
        scores, label_key = weaktr_scores(path, threshold)
        masks[osp.splitext(osp.basename(path))[0]] = label_key[
            np.argmax(scores, axis=0)]
    return masks


def near_tie_pixels(path, threshold, tol=1e-6):
    """Pixels whose two highest raw scores (background = threshold) lie
    within ``tol``: there the softmax's float32 rounding may swap them."""
    cams = np.load(path, allow_pickle=True).item()
    maps = np.concatenate([np.full((1, ) + next(iter(cams.values())).shape,
                                   threshold, np.float32),
                           np.array(list(cams.values()))])
    top = np.sort(maps, axis=0)[-2:]
    return int(((top[1] - top[0]) <= tol).sum())
