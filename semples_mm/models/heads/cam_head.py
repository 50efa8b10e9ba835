"""Class activation map (CAM) head for image-level (multi-label) labels."""
import math
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from mmseg.registry import MODELS

POOLS = ('gap', 'gmp', 'lse')


def normalize_cams(cams: Tensor,
                   labels: Optional[Tensor] = None,
                   size: Optional[Sequence[int]] = None,
                   eps: float = 1e-5) -> Tensor:
    """Turn raw CAMs into per-class maps in [0, 1].

    ReLU, bilinear upsampling to ``size``, per-map min-max normalisation
    ``(M - min) / (max - min + eps)``, and zero maps for classes absent from
    ``labels``. Differentiable (the matching stages backpropagate through
    it).

    Args:
        cams (Tensor): raw CAMs, (B, K, h, w), K foreground classes.
        labels (Tensor, optional): multi-hot image labels, (B, K). None keeps
            every class.
        size (Sequence[int], optional): output (H, W); None keeps (h, w).
        eps (float): keeps the division finite for flat maps; SemPLeS uses
            0.1 in its mask-training stages and 1e-4 in the prompt stage.

    Returns:
        Tensor: (B, K, H, W) in [0, 1).
    """
    if cams.dim() != 4:
        raise ValueError(f'normalize_cams: cams must be (B, K, h, w), got '
                         f'shape {tuple(cams.shape)}')
    cams = F.relu(cams)
    if size is not None and tuple(size) != tuple(cams.shape[-2:]):
        cams = F.interpolate(
            cams, size=tuple(size), mode='bilinear', align_corners=False)
    flat = cams.flatten(2)
    cam_min = flat.min(dim=2)[0][..., None, None]
    cam_max = flat.max(dim=2)[0][..., None, None]
    cams = (cams - cam_min) / (cam_max - cam_min + eps)
    if labels is not None:
        if labels.shape != cams.shape[:2]:
            raise ValueError(
                f'normalize_cams: labels shape {tuple(labels.shape)} does not '
                f'match the CAMs (B, K) = {tuple(cams.shape[:2])}')
        cams = cams * (labels > 0).to(cams.dtype)[..., None, None]
    return cams


def cams_to_segmentation(norm_cams: Tensor, bg_threshold: float) -> Tensor:
    """Pseudo mask from normalised CAMs and a constant background score.

    A channel filled with ``bg_threshold`` is put in front of the K class
    maps and the argmax taken, so a pixel is background unless some class
    scores above the threshold (ties go to background).

    Args:
        norm_cams (Tensor): (B, K, H, W) normalised CAMs, e.g. from
            :func:`normalize_cams`.
        bg_threshold (float): background score t.

    Returns:
        Tensor: (B, H, W) long, 0 = background, k + 1 = class k.
    """
    background = norm_cams.new_full(
        (norm_cams.shape[0], 1, *norm_cams.shape[2:]), bg_threshold)
    return torch.cat([background, norm_cams], dim=1).argmax(dim=1)


@MODELS.register_module()
class CAMHead(BaseModule):
    """A 1x1 classifier read both as CAMs and, pooled, as image logits.

    ``cams = W * f`` (1x1 conv, no bias) on the selected feature map, and
    ``logits = pool(cams)``; with GAP this equals the classifier applied to
    the pooled feature, the classic CAM construction. Not an mmseg
    ``BaseDecodeHead``: its K classes are foreground only and it is trained
    with image labels, not masks.

    Args:
        in_channels (int): channels C of the selected feature.
        num_classes (int): number K of foreground classes.
        in_index (int): which backbone/neck output to use. Defaults to -1.
        pool (str): 'gap' (mean), 'gmp' (max) or 'lse' (log-sum-exp, a soft
            max controlled by ``lse_r``). Defaults to 'gap'.
        lse_r (float): sharpness r of LSE pooling,
            ``(1/r) log mean exp(r x)``; large r tends to max, small r to
            mean. Defaults to 5.0.
        loss_cls (dict, optional): config of a loss called as
            ``loss(logits (B, K), labels (B, K))``, e.g.
            ``dict(type='mmseg.CrossEntropyLoss', use_sigmoid=True)``. None
            uses the multi-label soft-margin loss. Defaults to None.
        bg_threshold (float): default background score for
            :meth:`cams_to_segmentation`. Defaults to 0.45.
        cam_eps (float): default eps of :meth:`normalize_cams`.
            Defaults to 1e-5.
        init_cfg (dict, optional): initialisation config. Defaults to normal
            std 0.01 on the classifier.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 in_index: int = -1,
                 pool: str = 'gap',
                 lse_r: float = 5.0,
                 loss_cls: Optional[dict] = None,
                 bg_threshold: float = 0.45,
                 cam_eps: float = 1e-5,
                 init_cfg: Optional[Union[dict, list]] = dict(
                     type='Normal', std=0.01, layer='Conv2d')) -> None:
        super().__init__(init_cfg)
        if pool not in POOLS:
            raise ValueError(f'CAMHead: pool={pool!r} is not one of {POOLS}; '
                             'fix the cam_head.pool key of the config.')
        if pool == 'lse' and lse_r <= 0:
            raise ValueError(f'CAMHead: lse_r must be > 0, got {lse_r}.')
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.in_index = in_index
        self.pool = pool
        self.lse_r = lse_r
        self.bg_threshold = bg_threshold
        self.cam_eps = cam_eps
        self.classifier = nn.Conv2d(
            in_channels, num_classes, kernel_size=1, bias=False)
        self.loss_cls = MODELS.build(loss_cls) if loss_cls else None

    def forward(self, feats: Union[Tensor, Sequence[Tensor]]
                ) -> Tuple[Tensor, Tensor]:
        """Compute CAMs and image-level logits.

        Args:
            feats (Tensor | Sequence[Tensor]): backbone/neck outputs, each
                (B, C, h, w); ``feats[in_index]`` is used. A single tensor is
                used as is.

        Returns:
            tuple[Tensor, Tensor]: raw CAMs (B, K, h, w) and logits (B, K).
        """
        feat = feats if isinstance(feats, Tensor) else feats[self.in_index]
        cams = self.classifier(feat)
        return cams, self.pool_cams(cams)

    def pool_cams(self, cams: Tensor) -> Tensor:
        """Pool (B, K, h, w) CAMs to (B, K) logits with ``self.pool``."""
        flat = cams.flatten(2)
        if self.pool == 'gap':
            return flat.mean(dim=2)
        if self.pool == 'gmp':
            return flat.max(dim=2)[0]
        # LSE: (1/r) log( (1/N) sum exp(r x) ), stable through logsumexp.
        return (torch.logsumexp(self.lse_r * flat, dim=2) -
                math.log(flat.shape[2])) / self.lse_r

    def loss_by_cls(self, logits: Tensor, labels: Tensor) -> Dict[str, Tensor]:
        """Multi-label classification loss.

        Args:
            logits (Tensor): (B, K) image-level logits.
            labels (Tensor): (B, K) multi-hot labels.

        Returns:
            dict[str, Tensor]: ``{'loss_cls': loss}`` (or the configured
            loss's ``loss_name``).
        """
        labels = labels.to(logits.dtype)
        if self.loss_cls is None:
            return dict(loss_cls=F.multilabel_soft_margin_loss(logits, labels))
        name = getattr(self.loss_cls, 'loss_name', 'loss_cls')
        return {name: self.loss_cls(logits, labels)}

    def normalize_cams(self,
                       cams: Tensor,
                       labels: Optional[Tensor] = None,
                       size: Optional[Sequence[int]] = None,
                       eps: Optional[float] = None) -> Tensor:
        """:func:`normalize_cams` with ``eps`` defaulting to ``cam_eps``.

        Args:
            cams (Tensor): (B, K, h, w) raw CAMs.
            labels (Tensor, optional): (B, K) multi-hot labels.
            size (Sequence[int], optional): output (H, W).
            eps (float, optional): None uses ``self.cam_eps``.

        Returns:
            Tensor: (B, K, H, W) in [0, 1).
        """
        return normalize_cams(cams, labels, size,
                              self.cam_eps if eps is None else eps)

    def cams_to_segmentation(self,
                             norm_cams: Tensor,
                             bg_threshold: Optional[float] = None) -> Tensor:
        """:func:`cams_to_segmentation`, threshold defaulting to
        ``bg_threshold``; (B, K, H, W) -> (B, H, W) long ids 0..K."""
        return cams_to_segmentation(
            norm_cams,
            self.bg_threshold if bg_threshold is None else bg_threshold)
