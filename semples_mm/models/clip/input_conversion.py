"""From the CAM network's input to CLIP's."""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

# The CAM network's default data-preprocessor normalisation (0-255 pixels).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


class ClipInputConverter(nn.Module):
    """Images normalised for the CAM network -> CLIP's input: CLIP's own
    normalisation and image size.

    The normalisations differ by a per-channel affine map,
    ``x_clip = (x * s_in / 255 + m_in / 255 - m_clip) / s_clip
    = x * scale + shift``, which commutes with resizing.

    Args:
        input_mean, input_std (Sequence[float]): the images' normalisation,
            0-255 pixel units (the data preprocessor's).
        clip_mean, clip_std (Sequence[float]): CLIP's, 0-1 units (its
            ``preprocess_cfg``).
        image_size (tuple[int, int]): CLIP's input size.
        interpolation (str): of the resize ('bicubic' for OpenAI's CLIP).
        clip_normalize (bool): False keeps the values (resizing only), as
            the SemPLeS authors fed ImageNet-normalised crops to CLIP.
    """

    def __init__(self, input_mean: Sequence[float],
                 input_std: Sequence[float], clip_mean: Sequence[float],
                 clip_std: Sequence[float], image_size: Tuple[int, int],
                 interpolation: str = 'bicubic', clip_normalize: bool = True):
        super().__init__()
        input_mean = torch.tensor(input_mean, dtype=torch.float32)
        input_std = torch.tensor(input_std, dtype=torch.float32)
        if input_mean.shape != (3, ) or input_std.shape != (3, ):
            raise ValueError('FrozenCLIP: input_mean and input_std need 3 '
                             f'values each, got {input_mean.tolist()} and '
                             f'{input_std.tolist()}.')
        clip_mean = torch.tensor(clip_mean, dtype=torch.float32)
        clip_std = torch.tensor(clip_std, dtype=torch.float32)
        self.register_buffer('scale', (input_std / 255. / clip_std).view(
            1, 3, 1, 1), persistent=False)
        self.register_buffer('shift', ((input_mean / 255. - clip_mean) /
                                       clip_std).view(1, 3, 1, 1),
                             persistent=False)
        self.image_size = tuple(image_size)
        self.interpolation = interpolation
        self.clip_normalize = clip_normalize

    @classmethod
    def for_model(cls, model, input_mean=IMAGENET_MEAN,
                  input_std=IMAGENET_STD, clip_normalize: bool = True):
        """The converter to an open_clip ``model``'s input."""
        preprocess = model.visual.preprocess_cfg
        return cls(input_mean, input_std, preprocess['mean'],
                   preprocess['std'], model.visual.image_size,
                   preprocess.get('interpolation', 'bicubic'),
                   clip_normalize)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) images -> (N, 3, h, w) fp32 CLIP input."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError('FrozenCLIP.encode_image expects (N, 3, H, W) '
                             f'images, got shape {tuple(images.shape)}.')
        x = images.float()
        if self.clip_normalize:
            x = x * self.scale + self.shift
        if tuple(x.shape[-2:]) != self.image_size:
            x = F.interpolate(x, size=self.image_size,
                              mode=self.interpolation, align_corners=False)
        return x
