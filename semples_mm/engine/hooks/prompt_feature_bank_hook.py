"""Computes the prompt phase's frozen crop features once per image and view."""
import copy
import time

import torch
from mmengine.dataset import pseudo_collate
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmseg.registry import DATASETS, HOOKS
from torch.utils.data import DataLoader
from tqdm import tqdm


@HOOKS.register_module()
class PromptFeatureBankHook(Hook):
    """Fills ``model.prompt_feature_bank`` when the prompt phase starts.

    In the prompt phase the CAM network and CLIP are frozen, so the CLIP
    features of every (image, class) crop can be computed once: this hook
    runs every image of ``dataloader`` (a fixed view, e.g. the image resized
    to the crop size) and, with ``flip``, its horizontal flip through the
    frozen CAM network and CLIP, and stores the features per
    ``(img_path, flipped)``. The prompt phase's steps then read them for the
    images and flip flags of each training batch, ignoring the batch's
    pixels, so they cost only the text encoder.

    This trains the prompts on the fixed views, not on the training
    pipeline's random crops as the authors do; when the training views are
    the fixed views (the synthetic config: flips only), nothing changes but
    the speed. Every process computes the whole bank (each rank may draw any
    image); it is rebuilt after a resume inside the phase (deterministic) and
    dropped when the phase ends.

    Args:
        dataloader (dict): dataset and batch settings of the fixed views:
            ``dict(batch_size=..., num_workers=..., dataset=dict(...))``, the
            dataset listing every training image with a deterministic
            pipeline ending in ``PackWSSSInputs`` that gives every image the
            same size without padding (the flip is taken of the
            preprocessed tensor). Images are read in order, without a
            sampler.
        flip (bool): also store the horizontal flip of every view, for
            training pipelines with ``RandomFlip``.
    """
    # After SemPLeSPhaseHook (HIGHEST) has entered the iteration's phase.
    priority = 'VERY_HIGH'

    def __init__(self, dataloader: dict, flip: bool = True):
        if not isinstance(dataloader, dict) or 'dataset' not in dataloader:
            raise ValueError(
                'PromptFeatureBankHook: dataloader must be a dict with a '
                f"'dataset' config, got {dataloader!r}.")
        self.dataloader_cfg = copy.deepcopy(dataloader)
        self.flip = flip

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        model = self._model(runner)
        if model.phase != 'prompt':
            model.prompt_feature_bank = None
        elif model.prompt_feature_bank is None:
            model.prompt_feature_bank = self.build_bank(model)

    def _loader(self) -> DataLoader:
        cfg = self.dataloader_cfg
        return DataLoader(
            DATASETS.build(cfg['dataset']),
            batch_size=cfg.get('batch_size', 1),
            num_workers=cfg.get('num_workers', 0),
            shuffle=False,
            collate_fn=pseudo_collate)

    def build_bank(self, model) -> dict:
        """:func:`build_crop_feature_bank` over the dataloader's images."""
        start = time.perf_counter()
        loader = self._loader()
        bank = build_crop_feature_bank(
            model, tqdm(loader, desc='prompt feature bank', unit='batch'),
            self.flip)
        print_log(
            f'PromptFeatureBankHook: crop features of {len(loader.dataset)} '
            f'images x {2 if self.flip else 1} view(s) in '
            f'{time.perf_counter() - start:.1f} s', logger='current')
        return bank


@torch.no_grad()
def build_crop_feature_bank(model, batches, flip: bool = True) -> dict:
    """The prompt phase's crop features of every image (and its flip).

    Args:
        model (SemPLeS): in the prompt phase (frozen CAM network).
        batches (Iterable[dict]): dataloader batches (``pseudo_collate``);
            the samples need ``img_path`` and ``gt_class_labels``.
        flip (bool): also the horizontal flip of every image.

    Returns:
        dict: ``(img_path, flipped) -> (classes, features)``, classes a
        tuple of class indices, features a tuple of (len(classes), D)
        tensors (background crops, then foreground crops if the prompt loss
        uses them), as ``SemPLeS.prompt_feature_bank`` expects.
    """
    bank = {}
    for data in batches:
        data = model.data_preprocessor(data, False)
        inputs, samples = data['inputs'], data['data_samples']
        labels = torch.stack(
            [s.gt_class_labels for s in samples]).to(inputs.dtype)
        for flipped in ((False, True) if flip else (False, )):
            per_image = model.frozen_crop_features_per_image(
                inputs.flip(-1) if flipped else inputs, labels)
            for sample, entry in zip(samples, per_image):
                bank[(sample.img_path, flipped)] = entry
    return bank
