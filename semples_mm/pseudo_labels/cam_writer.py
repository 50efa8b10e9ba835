"""CAM score maps (before thresholding) as files other WSSS codebases read.

Two layouts, one file per image, both holding only the image's labelled
classes, at the original image size, before any background score:

``'weaktr'``: ``<img_id>.npy``, the layout of WeakTr (hustvl/WeakTr) and of
the SemPLeS authors' code (kuongan/SemPLeS), read from their sources:

- written by ``generate_attention_maps_ms`` in ``engine.py`` of
  hustvl/WeakTr (the same function in ``engine1.py`` / ``engine2.py`` /
  ``engine3.py`` of kuongan/SemPLeS): ``np.save(<cam_npy_dir>/<img_name>.npy,
  cam_dict)`` where ``cam_dict = {cls_ind: cam}`` for every class with
  ``target[cls_ind] > 0`` (the image labels), ``cls_ind`` the 0-based
  foreground class index (no background entry), in increasing order;
  ``cam`` the summed multi-scale (+ flip) map upsampled to the original
  size, min-max normalised per map ``(cam - min) / (max - min + 1e-8)``, a
  float (H, W) numpy array; images without labels get no file;
- read by ``do_python_eval(..., input_type='npy')`` in ``evaluation.py`` of
  both repositories (``whole_eval`` sweeps its thresholds): ``np.load(path,
  allow_pickle=True).item()``; the maps stacked in the dict's key order,
  ``label_key = key + 1``; a background map of constant ``threshold``
  padded in front (``np.pad(..., constant_values=threshold)``), label 0;
  softmax over the channels (does not move the argmax), ``np.argmax``
  (ties to the first: background), then ``label_key[argmax]`` gives the
  VOC class id.

``'fma-wsss'``: ``<img_id>.npz``, FMA-WSSS's own CAM layout (HAL-42/FMA-WSSS
``src/tasks/infer_cam/run.py`` saves ``np.savez(<img_id>.npz, cam=...,
fg_cls=...)``; ``src/tasks/anns_seed/run.py``, the SAM-seed step, reads
``loaded['cam']`` (P, H, W) and ``loaded['fg_cls']`` (P,), 0-based
foreground ids, and resizes the maps to the image itself; the converter of
CLIP-ES CAMs in ProjectDisR/FMA-WSSS
``others/CLIP-ES/tasks/to_main_cam_format.py`` writes ``cam`` as float32
and ``fg_cls`` from CLIP-ES's 0-based ``keys``). FMA-WSSS reads WeakTr's
own npy files only through a loader patch
(``configs/anns_seed/_patches/wt_prob.py``, for the ``{'prob', 'keys'}``
files of WeakTr's segmentation network), hence this second layout.

The maps written are exactly those the PNG masks are thresholded on
(:class:`~semples_mm.models.cams.CAMInference`'s output: ReLU, upsampling,
per-map min-max normalisation with this export's ``eps``), as float32.
"""
import os.path as osp

import numpy as np
import torch
from torch import Tensor

from ..utils.atomic_file import atomic_write

#: ``cams_format`` values and the file suffix of each.
CAM_FORMATS = {'weaktr': '.npy', 'fma-wsss': '.npz'}


def check_cams_format(cams_format: str) -> str:
    if cams_format not in CAM_FORMATS:
        raise ValueError(f'CAM file format {cams_format!r} is not one of '
                         f'{sorted(CAM_FORMATS)}; use --cams-format weaktr '
                         "(WeakTr's and the SemPLeS authors' .npy) or "
                         "fma-wsss (FMA-WSSS's .npz).")
    return cams_format


class CamWriter:
    """Writes each image's present-class CAMs in one of :data:`CAM_FORMATS`.

    Args:
        out_dir (str): folder of the CAM files (created if missing).
        cams_format (str): 'weaktr' or 'fma-wsss'.
    """

    def __init__(self, out_dir: str, cams_format: str = 'weaktr'):
        self.out_dir = out_dir
        self.cams_format = check_cams_format(cams_format)
        self.num_written = 0

    def path(self, img_id: str) -> str:
        return osp.join(self.out_dir,
                        img_id + CAM_FORMATS[self.cams_format])

    def write(self, img_id: str, norm_cams: Tensor, labels: Tensor) -> None:
        """Write one image's file (none for an image without labels, as
        WeakTr).

        Args:
            img_id (str): file stem.
            norm_cams (Tensor): (K, H, W) normalised CAMs at the original
                size.
            labels (Tensor): (K,) multi-hot image labels.
        """
        present = torch.nonzero(labels.cpu() > 0).flatten()
        if not len(present):
            return
        maps = norm_cams[present.to(norm_cams.device)].float().cpu().numpy()
        classes = present.numpy().astype(np.int64)
        with atomic_write(self.path(img_id), 'wb') as file:
            if self.cams_format == 'weaktr':
                np.save(file, {int(c): m for c, m in zip(classes, maps)})
            else:
                np.savez(file, cam=maps, fg_cls=classes)
        self.num_written += 1
