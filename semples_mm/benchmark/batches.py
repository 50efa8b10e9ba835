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
                 labels: Optional[torch.Tensor] = None) -> dict:
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
    inputs, samples = [], []
    for i in range(batch_size):
        inputs.append(images[i].to(device))
        sample = SegDataSample(metainfo=dict(
            img_id=f'random_{i:05d}', img_path=f'random_{i:05d}.png',
            ori_shape=(height, width), img_shape=(height, width)))
        sample.gt_class_labels = labels[i].float().to(device)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)
