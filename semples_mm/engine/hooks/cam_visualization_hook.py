"""CAM heatmaps of a few fixed images, drawn by the runner's visualizer."""
import copy

import mmcv
import torch
from mmengine.dataset import pseudo_collate
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmseg.registry import DATASETS, HOOKS

from ...models.cams import CAMInference
from ...pseudo_labels import (export_settings, infer_batch_cams,
                              inference_settings, sample_image_id)
from ...utils.models import phase_schedule, unwrap_model


@HOOKS.register_module()
class CAMVisualizationHook(Hook):
    """Draw CAM overlays of fixed images at chosen iterations.

    For each image of ``image_indices`` (indices into the dataset of
    ``dataloader``, default the config's ``val_dataloader``) and each class
    in its image labels, adds an image ``cam_<img_id>_<class>`` (the
    normalised CAM as a jet heatmap over the image) through
    ``runner.visualizer.add_image``, so the file and TensorBoard backends
    both receive it. Drawn on rank 0 only.

    Args:
        image_indices (Sequence[int]): dataset indices of the images.
        iters (Sequence[int], optional): finished-iteration counts at which
            to draw.
        phases (Sequence[str], optional): also draw at the end of these
            model phases (the model's phase schedule).
        draw_after_train (bool): also draw when training ends.
        dataloader (dict, optional): config whose ``dataset`` gives images.
        scales (Sequence[float], optional): CAM input scales, and
        flip (bool, optional): horizontal flips; by default those of the
            pseudo-mask export (``export_settings``: the model's test_cfg,
            then pseudo_label_cfg), so the overlays show the exported CAMs.
        alpha (float): heatmap opacity.
    """

    priority = 'LOW'

    def __init__(self,
                 image_indices=(0, 1, 2, 3),
                 iters=None,
                 phases=None,
                 draw_after_train=True,
                 dataloader=None,
                 scales=None,
                 flip=None,
                 alpha=0.5):
        self.image_indices = list(image_indices)
        self.iters = set(iters or ())
        self.phases = list(phases or ())
        self.draw_after_train = draw_after_train
        self.dataloader = dataloader
        self.scales = scales
        self.flip = flip
        self.alpha = alpha
        self._dataset = None
        self._draw_iters = set()

    def before_train(self, runner):
        self._draw_iters = set(self.iters)
        if self.phases:
            schedule = phase_schedule(
                runner.model, f'CAMVisualizationHook(phases={self.phases})')
            self._draw_iters.update(schedule[p].end for p in self.phases)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 in self._draw_iters:
            self.draw(runner, step=runner.iter + 1)

    def after_train(self, runner):
        if self.draw_after_train and runner.iter not in self._draw_iters:
            self.draw(runner, step=runner.iter)

    def _get_dataset(self, runner):
        if self._dataset is None:
            cfg = self.dataloader if self.dataloader is not None else \
                runner.cfg.get('val_dataloader')
            if not isinstance(cfg, dict) or 'dataset' not in cfg:
                raise ValueError(
                    'CAMVisualizationHook needs a dataloader config with a '
                    'dataset: pass dataloader=dict(dataset=...) or define '
                    'val_dataloader in the config')
            self._dataset = DATASETS.build(copy.deepcopy(cfg['dataset']))
        return self._dataset

    def draw(self, runner, step):
        """Add the overlays of every image to the visualizer."""
        if not is_main_process():
            return
        dataset = self._get_dataset(runner)
        class_names = dataset.metainfo.get('classes')
        model = unwrap_model(runner.model)
        inference = CAMInference(**inference_settings(export_settings(
            runner.cfg, scales=self.scales, flip=self.flip)))
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                for index in self.image_indices:
                    if index >= len(dataset):
                        raise IndexError(
                            f'CAMVisualizationHook: image index {index} is '
                            f'past the dataset ({len(dataset)} images)')
                    batch = pseudo_collate([dataset[index]])
                    data_sample = batch['data_samples'][0]
                    cams = infer_batch_cams(model, inference, batch['inputs'],
                                            [data_sample])[0].cpu()
                    image = mmcv.imread(data_sample.metainfo['img_path'],
                                        channel_order='rgb')
                    img_id = sample_image_id(data_sample)
                    present = torch.nonzero(
                        data_sample.gt_class_labels > 0).flatten().tolist()
                    for k in present:
                        name = class_names[k + 1] if class_names else \
                            f'class{k + 1}'
                        # mmengine's heat map (jet, min-max) over the image
                        overlay = runner.visualizer.draw_featmap(
                            cams[k][None], image, alpha=self.alpha)
                        runner.visualizer.add_image(
                            f'cam_{img_id}_{name}'.replace(' ', '_'),
                            overlay, step=step)
        finally:
            model.train(was_training)
