"""Random batches shaped like a config's training batches."""
from typing import Optional, Sequence, Tuple

import torch
from mmseg.structures import SegDataSample


def config_image_size(cfg) -> Tuple[int, int]:
    """(H, W) of the config's training images.

    The data preprocessor's fixed ``size`` (what every batch is padded to),
    else the config's ``crop_size``.

    Raises:
        KeyError: if the config names neither.
    """
    size = (cfg.model.get('data_preprocessor') or {}).get('size')
    if size is None:
        size = cfg.get('crop_size')
    if size is None:
        raise KeyError(
            'benchmark: the config sets neither model.data_preprocessor.size '
            'nor crop_size, so the image size of a batch is unknown; add one '
            '(e.g. --cfg-options crop_size="(224,224)").')
    height, width = (size, size) if isinstance(size, int) else size
    return int(height), int(width)


#: (H, W) of the dataset images the export is timed on when its pipeline
#: resizes them: the commonest PASCAL VOC size. COCO's usual 480x640 has the
#: same aspect, so a keep-ratio Resize gives both the same network input.
TYPICAL_SOURCE_SIZE = (375, 500)


def export_pipeline(cfg) -> list:
    """Transforms of the dataset the pseudo-mask export reads: the
    ``val_dataloader`` (what ``PseudoLabelHook`` and
    ``tools/make_pseudo_labels.py`` read by default); [] without one."""
    loader = cfg.get('val_dataloader') or {}
    return list((loader.get('dataset') or {}).get('pipeline') or [])


def export_image_sizes(cfg, source_size: Optional[Sequence[int]] = None
                       ) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """Sizes of one image in the pseudo-mask export.

    The export reads whole dataset images, not training crops: the network
    sees each image after the export pipeline's ``Resize`` transforms (at
    scale 1.0), and the CAMs are upsampled back to the image's own size.

    Args:
        cfg (Config): a SemPLeS config.
        source_size (Sequence[int], optional): (H, W) of the dataset image.
            Default: :data:`TYPICAL_SOURCE_SIZE` when the pipeline resizes,
            else the training image size (:func:`config_image_size`; the
            synthetic world's images are their own crops).

    Returns:
        tuple: ((H, W) of the image, the CAMs' output size (ori_shape);
        (H, W) of the network input at scale 1.0).
    """
    resizes = [t for t in export_pipeline(cfg) if t.get('type') == 'Resize']
    if source_size is None:
        source_size = TYPICAL_SOURCE_SIZE if resizes else \
            config_image_size(cfg)
    height, width = (int(source_size[0]), int(source_size[1]))
    if height < 1 or width < 1:
        raise ValueError(f'benchmark: export image size {height}x{width} '
                         'must be positive.')
    if not resizes:
        return (height, width), (height, width)
    import numpy as np
    from mmengine.registry import DefaultScope
    from mmseg.registry import TRANSFORMS
    results = dict(img=np.zeros((height, width, 3), dtype=np.uint8))
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope',
                                                      'mmseg')):
        for transform in resizes:
            results = TRANSFORMS.build(dict(transform))(results)
    resized = results['img'].shape[:2]
    return (height, width), (int(resized[0]), int(resized[1]))


def selection_batch_size(cfg) -> int:
    """Images per batch of the model selection: the ``dataloader`` of the
    config's ``BestCAMSelectionHook``, else ``val_dataloader`` (the hook's
    default), else 1."""
    for hook in cfg.get('custom_hooks') or []:
        if hook.get('type') == 'BestCAMSelectionHook' and \
                hook.get('dataloader'):
            return int(hook['dataloader'].get('batch_size', 1))
    return int((cfg.get('val_dataloader') or {}).get('batch_size', 1))


def random_labels(batch_size: int, num_classes: int,
                  generator: torch.Generator,
                  max_classes: int = 3) -> torch.Tensor:
    """Multi-hot labels with 1 to ``max_classes`` classes per image.

    Returns:
        Tensor: (B, K) float32.
    """
    labels = torch.zeros(batch_size, num_classes)
    most = min(max_classes, num_classes)
    for i in range(batch_size):
        count = int(torch.randint(1, most + 1, (1, ), generator=generator))
        classes = torch.randperm(num_classes, generator=generator)[:count]
        labels[i, classes] = 1.
    return labels


def random_batch(batch_size: int,
                 image_size: Sequence[int],
                 num_classes: int,
                 seed: int = 0,
                 device: str = 'cpu',
                 labels: Optional[torch.Tensor] = None,
                 ori_shape: Optional[Sequence[int]] = None) -> dict:
    """A dataloader-style batch of random images and labels.

    Packed as ``PackWSSSInputs`` packs real data, so ``model.train_step``
    (data preprocessor included) runs on it unchanged.

    Args:
        batch_size (int): B.
        image_size (Sequence[int]): (H, W).
        num_classes (int): K foreground classes.
        seed (int): seed of the images and labels.
        device (str): where the tensors are put (the data preprocessor would
            move them there anyway; doing it once keeps transfers out of the
            timed steps).
        labels (Tensor, optional): (B, K) labels to use instead of random
            ones.
        ori_shape (Sequence[int], optional): (H, W) the images had before
            the pipeline resized them to ``image_size`` (the exporter's
            output size); default ``image_size``.

    Returns:
        dict: ``inputs`` (list of B (3, H, W) uint8 tensors) and
        ``data_samples`` (B SegDataSample with ``gt_class_labels`` (K,)).
    """
    generator = torch.Generator().manual_seed(seed)
    height, width = image_size
    if labels is None:
        labels = random_labels(batch_size, num_classes, generator)
    elif tuple(labels.shape) != (batch_size, num_classes):
        raise ValueError(f'random_batch: labels have shape '
                         f'{tuple(labels.shape)}, expected '
                         f'({batch_size}, {num_classes}).')
    images = torch.randint(0, 256, (batch_size, 3, height, width),
                           generator=generator, dtype=torch.uint8)
    ori_shape = tuple(int(v) for v in (ori_shape or image_size))
    inputs, samples = [], []
    for i in range(batch_size):
        inputs.append(images[i].to(device))
        sample = SegDataSample(metainfo=dict(
            img_id=f'random_{i:05d}', img_path=f'random_{i:05d}.png',
            ori_shape=ori_shape, img_shape=(height, width)))
        sample.gt_class_labels = labels[i].float().to(device)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)
