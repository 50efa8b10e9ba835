"""Crop features of fixed views, computed once per image when the phase
starts."""
import copy
import time
from typing import Iterable, Optional

import torch
from mmengine.logging import print_log
from mmengine.runner import Runner
from mmseg.registry import DATASETS, MODELS
from torch.utils.data import SequentialSampler
from tqdm import tqdm

from .base import CropFeatureSource, joined, per_image, present_classes


@MODELS.register_module()
class FixedViewBankCropFeatures(CropFeatureSource):
    """A bank of the crop features of every training image and its flip.

    On its first call the bank runs every image of ``dataloader`` (a fixed
    view, e.g. the image resized to the crop size) and, with ``flip``, its
    horizontal flip through the frozen networks, and stores the features per
    ``(img_path, flipped)``. Every later call looks the batch's samples up by
    their ``img_path`` and ``flip`` metainfo and never looks at their
    pixels, so the phase's pipeline need not decode images at all (see
    ``RandomFlipFlag``).

    This trains the prompts on the fixed views, not on random crops as the
    authors do. Every process holds the whole bank (each rank may draw any
    image). It is rebuilt after a resume inside the phase (deterministic)
    and dropped by :meth:`reset` when the phase ends.

    Args:
        dataloader (dict, optional): mmengine dataloader config of the fixed
            views (None: the bank is filled only by :meth:`fill`):
            ``batch_size``, ``num_workers`` and ``dataset``, listing every
            training image with the training labels and a deterministic
            pipeline ending in ``PackWSSSInputs`` that gives every image the
            same size without padding (the flip is taken of the
            preprocessed tensor). Read in order, every image once.
        flip (bool): also store the horizontal flip of every view, for
            training batches that flip.
        view_pipeline (list[dict], optional): replaces the dataset's
            pipeline, so ``dataset`` may be the training dataset's config
            (``{{_base_.train_dataloader.dataset}}``).
    """

    def __init__(self, dataloader: Optional[dict] = None, flip: bool = True,
                 view_pipeline=None):
        if dataloader is not None and (not isinstance(dataloader, dict)
                                       or 'dataset' not in dataloader):
            raise ValueError(
                'FixedViewBankCropFeatures: dataloader must be a dict with a '
                f"'dataset' config, got {dataloader!r}.")
        self.dataloader_cfg = copy.deepcopy(dict(dataloader or {}))
        if view_pipeline is not None and dataloader is not None:
            self.dataloader_cfg['dataset'] = dict(
                self.dataloader_cfg['dataset'], pipeline=list(view_pipeline))
        self.flip = bool(flip)
        self._bank = None

    def reset(self):
        self._bank = None

    def __len__(self) -> int:
        """Views in the bank (0 before it is filled and after a reset)."""
        return len(self._bank or {})

    def build_loader(self):
        """The in-order dataloader of the fixed views (every image on every
        rank: no distributed sharding)."""
        cfg = copy.deepcopy(self.dataloader_cfg)
        cfg.pop('persistent_workers', None)
        dataset = DATASETS.build(cfg.pop('dataset'))
        cfg.update(dataset=dataset, sampler=SequentialSampler(dataset))
        return Runner.build_dataloader(cfg)

    @torch.no_grad()
    def fill(self, encoder, batches: Iterable[dict]) -> int:
        """Fill the bank with the views of ``batches`` (dataloader batches);
        returns the number of images."""
        bank, count = {}, 0
        for batch in batches:
            data = encoder.preprocess(batch)
            inputs, samples = data['inputs'], data['data_samples']
            labels = torch.stack(
                [s.gt_class_labels for s in samples]).to(inputs.dtype)
            for flipped in ((False, True) if self.flip else (False, )):
                views = inputs.flip(-1) if flipped else inputs
                for sample, entry in zip(samples, per_image(
                        encoder.features(views, labels), labels)):
                    bank[(sample.img_path, flipped)] = entry
            count += len(samples)
        self._bank = bank
        return count

    def __call__(self, encoder, inputs, labels, data_samples):
        if self._bank is None:
            if not self.dataloader_cfg:
                raise RuntimeError('FixedViewBankCropFeatures has no '
                                   'dataloader and was not filled.')
            start = time.perf_counter()
            loader = self.build_loader()
            count = self.fill(encoder, tqdm(
                loader, desc='prompt feature bank', unit='batch'))
            print_log(
                f'FixedViewBankCropFeatures: crop features of {count} '
                f'images x {2 if self.flip else 1} view(s) in '
                f'{time.perf_counter() - start:.1f} s', logger='current')
        found = []
        for sample, classes in zip(data_samples, present_classes(labels)):
            key = (sample.metainfo.get('img_path'),
                   bool(sample.metainfo.get('flip', False)))
            banked_classes, feats = self._bank.get(key, (None, None))
            if feats is None or banked_classes != classes:
                raise KeyError(
                    f'FixedViewBankCropFeatures: the bank has no view {key} '
                    'with these labels; its dataloader must list every '
                    'training image with the training labels (and flip=True '
                    'if the batches flip).')
            found.append(feats)
        return joined(found)
