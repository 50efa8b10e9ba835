"""Writes pseudo masks: background threshold and argmax (or a dense CRF in a
process pool), atomic palette PNGs, never into ground truth."""
import multiprocessing
import os
import os.path as osp
from typing import Callable, Iterable, Optional

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..models.cams import with_background
from ..utils.mask_png import save_mask_png
from .crf import dense_crf_labels, merge_crf_cfg, require_pydensecrf
from .output_guard import check_output_dir


def _crf_job(img_path, scores, candidate_ids, out_path, crf_cfg):
    """Pool worker: CRF-refine one image and write its mask."""
    image = np.asarray(Image.open(img_path).convert('RGB'))
    if image.shape[:2] != scores.shape[1:]:
        raise ValueError(
            f'{img_path} is {image.shape[:2]} but its CAMs are '
            f'{scores.shape[1:]} (ori_shape); the CRF needs the image at its '
            'original size')
    save_mask_png(candidate_ids[dense_crf_labels(image, scores, crf_cfg)],
                  out_path)
    return out_path


class MaskWriter:
    """``<out_dir>/<img_id>.png`` class-id masks from normalised CAMs.

    A pixel is background (0) unless some class's CAM beats
    ``bg_threshold`` (then class k + 1); with ``crf`` the background score
    and the present classes' CAMs go through a dense CRF, in a pool of
    processes. PNGs are renamed into place when complete (a kill leaves
    whole files or temporary ones, which the next export removes before
    any process writes: ``remove_stale_temp_files``). Use as a context
    manager: leaving it waits for the CRF jobs.

    Args:
        out_dir (str): output folder; refused if it is, or lies inside, a
            ground-truth folder (``protected_dirs`` or a VOC annotation
            folder name).
        bg_threshold (float): background score t.
        crf (bool): refine with a dense CRF (needs pydensecrf).
        crf_cfg (dict, optional): overrides of ``crf.DEFAULT_CRF_CFG``.
        crf_workers (int, optional): CRF pool size; default: CPU count.
        protected_dirs (Iterable[str]): folders never to write into.
        on_written (callable, optional): ``on_written(img_id)`` once a PNG
            is complete on disk.
    """

    def __init__(self, out_dir: str, bg_threshold: float, crf: bool = False,
                 crf_cfg: Optional[dict] = None,
                 crf_workers: Optional[int] = None,
                 protected_dirs: Iterable[str] = (),
                 on_written: Optional[Callable[[str], None]] = None):
        check_output_dir(out_dir, protected_dirs)
        if crf:
            require_pydensecrf()  # fail before any work is done
        self.out_dir = out_dir
        self.bg_threshold = bg_threshold
        self.crf_cfg = merge_crf_cfg(crf_cfg) if crf else None
        self.on_written = on_written
        self.num_written = 0
        os.makedirs(out_dir, exist_ok=True)
        self._pending = []  # AsyncResult of CRF jobs, oldest first
        self._pool = None
        if crf:
            workers = crf_workers or os.cpu_count() or 1
            self._max_pending = 4 * workers  # bounds the maps held in memory
            # fork: workers need only numpy and pydensecrf, not torch again
            method = 'fork' if 'fork' in \
                multiprocessing.get_all_start_methods() else None
            self._pool = multiprocessing.get_context(method).Pool(workers)

    def path(self, img_id: str) -> str:
        return osp.join(self.out_dir, f'{img_id}.png')

    def exists(self, img_id: str) -> bool:
        return osp.exists(self.path(img_id))

    def write(self, img_id: str, norm_cams: Tensor, labels: Tensor,
              img_path: Optional[str] = None) -> None:
        """Write the mask of one image.

        Args:
            img_id (str): file stem.
            norm_cams (Tensor): (K, H, W) normalised, label-restricted CAMs.
            labels (Tensor): (K,) multi-hot image labels.
            img_path (str, optional): the image, read by the CRF.
        """
        if self._pool is None:
            scores = with_background(norm_cams[None], self.bg_threshold)[0]
            save_mask_png(scores.argmax(0).cpu().numpy(), self.path(img_id))
            self._done(img_id)
            return
        present = torch.nonzero(labels.cpu() > 0).flatten()
        scores = with_background(
            norm_cams[present.to(norm_cams.device)][None],
            self.bg_threshold)[0].cpu().numpy()
        candidate_ids = np.concatenate([[0], present.numpy() + 1]).astype(
            np.uint8)
        self._pending.append(self._pool.apply_async(
            _crf_job, (img_path, scores, candidate_ids, self.path(img_id),
                       self.crf_cfg)))
        self.finish(block=True, keep=self._max_pending)

    def _done(self, img_id: str):
        self.num_written += 1
        if self.on_written is not None:
            self.on_written(img_id)

    def finish(self, block: bool = True, keep: int = 0) -> None:
        """Collect finished CRF jobs (all of them with ``block``, leaving at
        most ``keep`` running)."""
        while self._pending and len(self._pending) > keep and (
                block or self._pending[0].ready()):
            out_path = self._pending.pop(0).get()
            self._done(osp.splitext(osp.basename(out_path))[0])

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        try:
            if exc_type is None:
                self.finish(block=True)
        finally:
            self.close()
